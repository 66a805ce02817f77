"""The three DAGs: per-queue benchmark tasks and pools, schedules, and trigger-form params that reject bad input."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk.exceptions import ParamValidationError

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag


def _validate(dag, conf: dict) -> dict:
    params = copy.deepcopy(dag.params)
    for key, value in conf.items():
        params[key] = value
    return params.validate()


def test_queues_from_the_environment_give_one_task_and_pool_per_queue(tmp_path):
    """GREENLANE_QUEUES is read when the DAG file is parsed: each queue gets its own benchmark task and pool."""
    code = (
        "import json; from airflow.dag_processing.dagbag import DagBag; b = DagBag(dag_folder=%r); "
        "print(json.dumps({d: {t.task_id: [t.queue, t.pool] for t in b.dags[d].tasks} for d in b.dags}))" % str(DAGS)
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "GREENLANE_QUEUES": "gpu, jetson"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    tasks = json.loads(out.stdout.strip().splitlines()[-1])
    for dag_id, step in (("greenlane_optimize", "benchmark"), ("greenlane_retrain", "benchmark"),
                         ("greenlane_energy_profile", "profile")):
        for queue in ("default", "gpu", "jetson"):
            assert tasks[dag_id][f"{step}_{queue}"] == [queue, f"greenlane-benchmark-{queue}"], (dag_id, queue)
        # everything else stays on the default queue and pool
        others = {k: v for k, v in tasks[dag_id].items() if not k.startswith(step + "_")}
        assert all(v == ["default", "default_pool"] for v in others.values()), others


def test_promotion_runs_whatever_the_benchmarks_did(dagbag):
    for dag_id in ("greenlane_optimize", "greenlane_retrain"):
        dag = dagbag.dags[dag_id]
        promote = dag.get_task("promote")
        assert promote.trigger_rule == "all_done"  # a target without a worker must not block the others
        assert "benchmark_default" in promote.upstream_task_ids
        assert "promote" in dag.get_task("check_complete").upstream_task_ids
        assert dag.get_task("check_complete").trigger_rule == "all_done"
        assert dag.get_task("benchmark_default").execution_timeout is not None
        assert dag.get_task("plan_benchmarks_default").execution_timeout is not None
    assert dagbag.dags["greenlane_energy_profile"].get_task("finish").trigger_rule == "all_done"


def test_retrain_is_asset_scheduled_and_takes_the_ci_payload(dagbag):
    dag = dagbag.dags["greenlane_retrain"]
    assert "greenlane_task_data" in str(dag.timetable.asset_condition)
    assert [t for t in dag.tasks if t.task_id == "tune"]
    assert {"data_version", "git_sha", "lora", "config_path", "variants", "targets"} <= set(dag.params.keys())
    ok = _validate(dag, {"data_version": "2026-11-23", "git_sha": "b05c5c5", "lora": {"steps": 2}})
    assert ok["git_sha"] == "b05c5c5"
    with pytest.raises(ParamValidationError, match="git_sha"):
        _validate(dag, {"git_sha": "not a sha"})
    with pytest.raises(ParamValidationError):
        _validate(dag, {"lora": {"steps": 0}})


def test_optimize_form_accepts_typed_input(dagbag):
    dag = dagbag.dags["greenlane_optimize"]
    assert dag.timetable.expression == "0 0 * * 0"  # @weekly
    ok = _validate(dag, {
        "base_model": "bundled:SmolLM2-135M-Instruct", "variants": ["baseline", "bf16"], "region": "QC",
        "targets": {"cpu": {"queue": "default"}, "jetson": {"queue": "jetson", "hardware": "jetson-orin-nano"}},
        "max_accuracy_drop": 0.02, "min_accuracy": 0.5, "max_latency_p95_ms": 20000, "overrides": {"eval.limit": 50},
    })
    assert ok["variants"] == ["baseline", "bf16"]
    assert _validate(dag, {})["targets"] is None  # every shortcut is optional: the config decides


@pytest.mark.parametrize("conf", [
    {"max_accuracy_drop": 2},                        # a fraction
    {"min_accuracy": -0.1},
    {"max_latency_p95_ms": "fast"},
    {"variants": []},                                # at least one
    {"variants": ["baseline", "no spaces"]},
    {"targets": {"cpu": {"queue": "not a queue"}}},
    {"targets": {"cpu": {"pue": 0.5}}},
    {"targets": {}},
    {"overrides": ["eval.limit=5"]},                 # an object of dotted keys
    {"region": "New York"},
])
def test_optimize_form_rejects_bad_input(dagbag, conf):
    with pytest.raises(ParamValidationError):
        _validate(dagbag.dags["greenlane_optimize"], conf)


def test_energy_profile_grid_params(dagbag):
    dag = dagbag.dags["greenlane_energy_profile"]
    assert {"tin", "tout", "repeats", "targets", "config_path"} <= set(dag.params.keys())
    assert {t.task_id for t in dag.tasks if getattr(t, "is_mapped", False)} >= {"profile_default"}
    assert _validate(dag, {"tin": [16, 64], "tout": [8, 32, 128, 256, 512]})["tin"] == [16, 64]
    for bad in ({"tin": [0, 16]}, {"tout": [8]}, {"repeats": 0}):
        with pytest.raises(ParamValidationError):
            _validate(dag, bad)
