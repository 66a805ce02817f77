"""Aliases on a real SQLite MLflow registry: promotion records the previous champion, rollback restores it."""

import pytest
from mlflow import MlflowClient

from tasks.errors import GreenlaneError
from tasks.tracking import registry, runs


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "e", artifact_location=(tmp_path / "art").as_uri())
    versions = []
    for variant in ("baseline", "bf16"):
        run_id = runs.ensure_run(uri, exp, key=f"r/{variant}", run_name=variant)
        versions.append(registry.register_variant(uri, "m", run_id, variant))
    return uri, exp, versions


def test_register_is_idempotent_per_run(store):
    uri, exp, versions = store
    run_id = runs.find_run(uri, exp, "r/bf16").info.run_id
    assert registry.register_variant(uri, "m", run_id, "bf16") == versions[1]
    assert len(MlflowClient(uri).search_model_versions("name='m'")) == 2
    assert runs.ensure_run(uri, exp, key="r/bf16", run_name="bf16") == run_id


def test_promote_then_rollback(store):
    uri, _, (v1, v2) = store
    c = MlflowClient(uri)
    with pytest.raises(GreenlaneError, match="no previous champion"):
        registry.rollback(uri, "m", "cpu", is_default=True)
    registry.promote(uri, "m", "cpu", v1, is_default=True, decision_note="first")
    moved = registry.promote(uri, "m", "cpu", v2, is_default=True, decision_note="second")
    assert moved == {"alias": "champion-cpu", "version": v2, "previous": v1}
    assert str(c.get_model_version_by_alias("m", "champion").version) == v2
    registry.rollback(uri, "m", "cpu", is_default=True)
    assert str(c.get_model_version_by_alias("m", "champion-cpu").version) == v1
    assert str(c.get_model_version_by_alias("m", "champion").version) == v1
    assert c.get_model_version(name="m", version=v1).tags["decision-cpu"] == "rollback of champion-cpu"


def test_rollback_of_unknown_model(tmp_path):
    with pytest.raises(GreenlaneError, match="no registered model"):
        registry.rollback(f"sqlite:///{tmp_path / 'x.db'}", "nope", "cpu", is_default=False)
