"""A triggered DAG run's config: the trigger form's params -> config, its file in the run directory, read back."""

import json
from pathlib import Path

import pytest
import yaml

from tasks.config import (config_from_params, deep_merge, load_config, load_ctx_config, params_config_file, run_dir,
                          safe_name)
from tasks.errors import GreenlaneError


def test_typed_params_then_overrides_make_the_config():
    cfg = config_from_params({
        "variants": ["baseline", "bf16"], "region": "QC", "max_accuracy_drop": 0.05, "min_accuracy": None,
        "targets": {"gpu": {"queue": "gpu", "hardware": "t4"}, "cpu": {}},
        "overrides": {"gates.max_accuracy_drop": 0.03, "eval.limit": 7},
    })
    assert [v.name for v in cfg.variants] == ["baseline", "bf16"]
    assert list(cfg.targets) == ["gpu", "cpu"]  # the form's targets replace the config's
    assert cfg.targets["gpu"].queue == "gpu" and cfg.targets["cpu"].queue == "default"
    assert {t.region for t in cfg.targets.values()} == {"QC"}
    assert cfg.gates.max_accuracy_drop == 0.03 and cfg.eval.limit == 7  # free-form overrides come last
    assert cfg.gates.min_accuracy == load_config().gates.min_accuracy  # None: the config's value
    assert cfg.default_target == "cpu"


def test_replaced_targets_without_the_default_pick_the_first():
    cfg = config_from_params({"targets": {"edge": {"queue": "edge"}}})
    assert cfg.default_target == "edge"


@pytest.mark.parametrize("params, field", [
    ({"targets": {"x": {"queue": "two words"}}}, "targets.x.queue"),
    ({"targets": {"x": {"worker_wait_s": -1}}}, "targets.x.worker_wait_s"),
    ({"targets": {"x": {"region": "Atlantis"}}}, "targets.x.region"),
    ({"variants": ["bf16"]}, "variants"),
    ({"overrides": {"gates.min_accuracy": 2}}, "gates.min_accuracy"),
])
def test_bad_params_fail_naming_the_field(params, field):
    with pytest.raises(GreenlaneError, match=field.replace(".", r"\.")):
        config_from_params(params)


def test_params_config_lands_in_the_run_directory_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLANE_HOME", str(tmp_path))
    run_id = "manual__2026-11-29T23:00:00+00:00"
    path = params_config_file({"overrides": {"eval.limit": 5}}, run_id)
    assert path == str(tmp_path / "runs" / "manual__2026-11-29T23_00_00_00_00" / "params-config.yaml")
    assert run_dir(run_id) == Path(path).parent  # the directory every task of that run writes to
    assert load_config(path).eval.limit == 5
    # the tasks of the run read the validated config back from ctx["config_file"] (JSON, written by prepare)
    (tmp_path / "config.json").write_text(json.dumps(yaml.safe_load(Path(path).read_text())))
    assert load_ctx_config({"config_file": str(tmp_path / "config.json")}).eval.limit == 5


def test_safe_name_keeps_variant_at_target_and_replaces_the_rest():
    assert safe_name("bf16@cpu") == "bf16@cpu"
    assert safe_name("a/b c:d") == "a_b_c_d"


def test_deep_merge_lays_nested_keys_over_without_touching_the_inputs():
    base = {"a": {"x": 1, "y": 2}, "b": 1}
    extra = {"a": {"y": 3}, "c": {"z": 4}}
    assert deep_merge(base, extra) == {"a": {"x": 1, "y": 3}, "b": 1, "c": {"z": 4}}
    assert base == {"a": {"x": 1, "y": 2}, "b": 1} and extra == {"a": {"y": 3}, "c": {"z": 4}}
    assert deep_merge({"a": {"x": 1}}, {"a": 5}) == {"a": 5}  # a scalar replaces a mapping
