"""greenlane_retrain then greenlane_energy_profile on the tiny model, each a real Airflow dag.test() run
(SQLite metadata migrated by the runner) logging to a real SQLite MLflow store, read back afterwards."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[2]
FAST = {"eval.limit": 6, "eval.perplexity_tokens": 64, "benchmark.prompts": 2, "benchmark.max_new_tokens": 4,
        "benchmark.repeats": 1, "benchmark.max_repeats": 1}

pytestmark = pytest.mark.slow


def run_dag(dag_id: str, conf: dict, home: Path) -> tuple[str, str]:
    """`tasks.runner.run_dag` in a fresh interpreter (Airflow settings stay per process)."""
    code = "import json, sys; from tasks.runner import run_dag; print(json.dumps(run_dag(sys.argv[1], json.loads(sys.argv[2]))))"
    out = subprocess.run([sys.executable, "-c", code, dag_id, json.dumps(conf)], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "GREENLANE_HOME": str(home)}, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    run_id, state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state == "success", out.stderr[-4000:]
    return run_id, state


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("greenlane-home")


@pytest.fixture(scope="module")
def retrained(tiny_dir, home):
    conf = {"base_model": str(tiny_dir), "variants": ["baseline", "bf16"], "data_version": "reviews-v2",
            "git_sha": "b05c5c5", "lora": {"steps": 2, "batch_size": 2}, "min_accuracy": 0, "max_accuracy_drop": 1,
            "overrides": FAST}
    return run_dag("greenlane_retrain", conf, home)[0]


def test_retrain_records_the_trigger_tunes_and_promotes(retrained, home):
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    parent = c.search_runs([exp.experiment_id], filter_string=f"tags.`greenlane.dag_run_id` = '{retrained}'")[0]
    assert parent.data.tags["data_version"] == "reviews-v2" and parent.data.tags["git_sha"] == "b05c5c5"
    assert parent.data.params["data_version"] == "reviews-v2" and parent.data.params["lora.steps"] == "2"
    assert parent.data.tags["mlflow.runName"] == f"retrain {retrained}"
    assert parent.data.metrics["lora_train_steps"] == 2 and "lora_train_loss_end" in parent.data.metrics
    assert any(a.path == "lora-adapter" for a in c.list_artifacts(parent.info.run_id))
    from tasks.config import safe_name

    run_dir = home / "runs" / safe_name(retrained)
    tuned = json.loads((run_dir / "tuned" / "lora-tuning.json").read_text())
    assert tuned["chain"][0]["method"] == "lora"
    # the variants are built from the tuned model: the baseline is the tuned model itself
    baseline = json.loads((run_dir / "variants" / "baseline" / "greenlane_variant.json").read_text())
    assert baseline["chain"] == [] and (run_dir / "variants" / "baseline" / "lora-tuning.json").is_file()
    decision = json.loads((run_dir / "decision.json").read_text())
    assert decision["targets"]["cpu"]["promoted"]
    assert c.get_model_version_by_alias("tiny-llama", "champion-cpu").version


def test_energy_profile_fits_and_logs_the_champions_models(retrained, tiny_dir, home):
    run_id, _ = run_dag("greenlane_energy_profile",
                        {"base_model": str(tiny_dir), "tin": [8, 16, 32, 64], "tout": [2, 4, 8]}, home)
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    parent = c.search_runs([exp.experiment_id], filter_string=f"tags.`greenlane.dag_run_id` = '{run_id}'")[0]
    assert parent.data.tags["greenlane.dag"] == "greenlane_energy_profile" and parent.info.status == "FINISHED"
    children = c.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 1
    child = children[0]
    champion = c.get_model_version_by_alias("tiny-llama", "champion-cpu")
    assert child.info.run_name == f"{child.data.tags['variant']}@cpu energy-profile"
    assert child.data.tags["model_version"] == str(champion.version)
    for key in ("energy_model_cv_mdape", "runtime_model_cv_mdape", "energy_j_r2", "energy_model_cells"):
        assert key in child.data.metrics, key
    assert child.data.metrics["energy_model_cells"] == 12
    assert child.data.tags["energy_source"] and child.data.tags["worker"]
    assert {a.path for a in c.list_artifacts(child.info.run_id)} >= {"energy_grid.csv", "energy_model.json"}
    assert c.get_model_version("tiny-llama", champion.version).tags["energy_profile_run_id"] == child.info.run_id
