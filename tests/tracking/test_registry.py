"""Aliases on a real SQLite MLflow registry: promotion keeps a history of champions, rollback walks it back."""

import json
import shutil

import pytest
from mlflow import MlflowClient

from tasks import cli
from tasks.errors import GreenlaneError
from tasks.tracking import registry, runs


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A registered model `m` with four versions, one per variant run; built once (a new store's schema
    migrations take ~10 s) and copied for each test."""
    path = tmp_path_factory.mktemp("template")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "e", artifact_location=(path / "art").as_uri())
    versions = []
    for variant in ("baseline", "bf16", "int8", "int4"):
        run_id = runs.ensure_run(uri, exp, key=f"r/{variant}", run_name=variant)
        versions.append(registry.register_variant(uri, "m", run_id, variant))
    return path / "mlflow.db", exp, versions


@pytest.fixture
def store(template, tmp_path):
    db, exp, versions = template
    shutil.copy(db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}", exp, versions


def aliases(uri: str) -> tuple[str, str]:
    c = MlflowClient(uri)
    return (str(c.get_model_version_by_alias("m", "champion-cpu").version),
            str(c.get_model_version_by_alias("m", "champion").version))


def test_register_is_idempotent_per_run(store):
    uri, exp, versions = store
    run_id = runs.find_run(uri, exp, "r/bf16").info.run_id
    assert registry.register_variant(uri, "m", run_id, "bf16") == versions[1]
    assert len(MlflowClient(uri).search_model_versions("name='m'")) == 4
    assert runs.ensure_run(uri, exp, key="r/bf16", run_name="bf16") == run_id


def test_three_rollbacks_walk_back_three_versions(store):
    uri, _, (v1, v2, v3, v4) = store
    with pytest.raises(GreenlaneError, match="no earlier champion"):
        registry.rollback(uri, "m", "cpu", is_default=True)
    for v in (v1, v2, v3):
        registry.promote(uri, "m", "cpu", v, is_default=True, decision_note=f"won with {v}")
    moved = registry.promote(uri, "m", "cpu", v4, is_default=True, decision_note="fourth")
    assert moved == {"alias": "champion-cpu", "version": v4, "previous": v3}
    assert registry.champion_history(uri, "m", "cpu") == [v1, v2, v3]
    for expected, left in ((v3, [v1, v2]), (v2, [v1]), (v1, [])):
        back = registry.rollback(uri, "m", "cpu", is_default=True)
        assert aliases(uri) == (expected, expected)
        assert (back["version"], back["history"]) == (expected, left)
        assert registry.champion_history(uri, "m", "cpu") == left
    assert MlflowClient(uri).get_model_version("m", v1).tags["decision-cpu"] == "rollback of champion-cpu"
    with pytest.raises(GreenlaneError, match=rf"no earlier champion of target 'cpu' is recorded \(current: {v1}\)"):
        registry.rollback(uri, "m", "cpu", is_default=True)
    assert aliases(uri) == (v1, v1)  # the failed fourth rollback moved nothing


def test_promotion_after_rollback_never_leads_forward(store):
    uri, _, (v1, v2, v3, v4) = store
    for v in (v1, v2, v3):
        registry.promote(uri, "m", "cpu", v, is_default=True, decision_note="")
    registry.rollback(uri, "m", "cpu", is_default=True)  # v3 -> v2: v3 leaves the history for good
    registry.promote(uri, "m", "cpu", v4, is_default=True, decision_note="")
    registry.promote(uri, "m", "cpu", v4, is_default=True, decision_note="same champion again")  # no entry
    assert registry.champion_history(uri, "m", "cpu") == [v1, v2]
    assert [registry.rollback(uri, "m", "cpu", is_default=True)["version"] for _ in range(2)] == [v2, v1]


def test_targets_keep_separate_histories(store):
    uri, _, (v1, v2, v3, _) = store
    registry.promote(uri, "m", "cpu", v1, is_default=True, decision_note="")
    registry.promote(uri, "m", "gpu", v2, is_default=False, decision_note="")
    registry.promote(uri, "m", "gpu", v3, is_default=False, decision_note="")
    registry.rollback(uri, "m", "gpu", is_default=False)
    c = MlflowClient(uri)
    assert str(c.get_model_version_by_alias("m", "champion-gpu").version) == v2
    assert aliases(uri) == (v1, v1)  # the default target's aliases did not move
    assert registry.champion_history(uri, "m", "cpu") == [] == registry.champion_history(uri, "m", "gpu")


def test_deleted_version_in_history_moves_nothing(store):
    uri, _, (v1, v2, v3, _) = store
    for v in (v1, v2, v3):
        registry.promote(uri, "m", "cpu", v, is_default=True, decision_note="")
    MlflowClient(uri).delete_model_version("m", v2)
    with pytest.raises(GreenlaneError, match=rf"version {v2}, the previous champion of target 'cpu', was deleted"):
        registry.rollback(uri, "m", "cpu", is_default=True)
    assert aliases(uri) == (v3, v3)
    assert registry.champion_history(uri, "m", "cpu") == [v1, v2]
    back = registry.rollback(uri, "m", "cpu", is_default=True, skip_deleted=True)
    assert (back["version"], back["skipped_deleted"], back["replaced"]) == (v1, [v2], v3)
    assert aliases(uri) == (v1, v1)


def test_only_deleted_versions_left_moves_nothing(store):
    uri, _, (v1, v2, _, _) = store
    registry.promote(uri, "m", "cpu", v1, is_default=True, decision_note="")
    registry.promote(uri, "m", "cpu", v2, is_default=True, decision_note="")
    MlflowClient(uri).delete_model_version("m", v1)
    with pytest.raises(GreenlaneError, match="no earlier champion of target 'cpu' is recorded that still exists"):
        registry.rollback(uri, "m", "cpu", is_default=True, skip_deleted=True)
    assert aliases(uri) == (v2, v2) and registry.champion_history(uri, "m", "cpu") == [v1]


def test_malformed_history_tag_is_one_line(store):
    uri, _, (v1, _, _, _) = store
    MlflowClient(uri).set_registered_model_tag("m", registry.history_tag("cpu"), json.dumps({"not": "a list"}))
    with pytest.raises(GreenlaneError, match="is not a JSON list of version strings"):
        registry.rollback(uri, "m", "cpu", is_default=True)


def test_rollback_of_unknown_model(store):
    with pytest.raises(GreenlaneError, match="no registered model 'nope'"):
        registry.rollback(store[0], "nope", "cpu", is_default=False)


def test_rollback_command_says_what_moved(store, capsys):
    uri, _, (v1, v2, v3, _) = store
    for v in (v1, v2, v3):
        registry.promote(uri, "m", "cpu", v, is_default=True, decision_note="")
    argv = ["rollback", "--target", "cpu", "--set", f"mlflow.tracking_uri={uri}", "--set", "mlflow.registered_model=m"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"champion-cpu and champion moved from version {v3} back to version {v2}" in out
    assert f"left to roll back to (oldest first): {v1}" in out
    assert cli.main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == v1
    assert cli.main(argv) == 2  # empty history: one line on stderr, exit 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no earlier champion" in err[0]
    assert aliases(uri) == (v1, v1)


def test_undoing_a_promotion_restores_the_previous_champion_or_removes_a_first_one(store):
    uri, _, (v1, v2, v3, _) = store
    assert registry.undo_promotion(uri, "m", "cpu", v1) is None  # no alias at all: nothing to undo
    registry.promote(uri, "m", "cpu", v1, is_default=True, decision_note="first")
    assert registry.undo_promotion(uri, "m", "cpu", v1).endswith("removed (version 1 was its first champion)")
    assert MlflowClient(uri).get_registered_model("m").aliases == {}
    registry.promote(uri, "m", "cpu", v1, is_default=True, decision_note="first")
    registry.promote(uri, "m", "cpu", v2, is_default=True, decision_note="second")
    assert registry.undo_promotion(uri, "m", "cpu", v3) is None  # v3 is not the champion: nothing moves
    assert "back to version 1" in registry.undo_promotion(uri, "m", "cpu", v2)
    assert aliases(uri) == (v1, v1) and registry.champion_history(uri, "m", "cpu") == []


def test_a_cancelled_dag_run_promotes_nothing(store):
    """The signal lands after the promote task moved the alias: the clean-up puts it back."""
    from tasks.tracking import cleanup

    uri, exp, (v1, *_) = store
    registry.promote(uri, "m", "cpu", v1, is_default=True, decision_note="an earlier run's")
    parent = runs.ensure_run(uri, exp, key="d/cancelled", run_name="optimize", tags={cleanup.DAG_RUN_TAG: "cancelled"})
    child = runs.ensure_run(uri, exp, key="d/cancelled/int8", run_name="int8@cpu", tags={runs.PARENT_TAG: parent})
    ours = registry.register_variant(uri, "m", child, "int8")
    registry.promote(uri, "m", "cpu", ours, is_default=True, decision_note="the cancelled run's")
    closed, undone = cleanup.kill_dag_run(uri, "cancelled", "cancelled: SIGTERM")
    assert closed == 2 and undone == [f"m@champion-cpu back to version {v1}"]
    assert aliases(uri) == (v1, v1)
    assert {MlflowClient(uri).get_run(r).info.status for r in (parent, child)} == {"KILLED"}
