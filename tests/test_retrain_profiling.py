"""greenlane_retrain's and greenlane_energy_profile's prepare steps: the trigger recorded, bad settings refused
before any work (a stand-in model directory: nothing is loaded or trained here)."""

import numpy as np
import pytest
from mlflow import MlflowClient
from safetensors.numpy import save_file

from tasks import profiling, retrain
from tasks.errors import GreenlaneError


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLANE_HOME", str(tmp_path / "home"))
    model = tmp_path / "stand-in"
    model.mkdir()
    (model / "config.json").write_text("{}")
    # a real (one-number) safetensors header: models.check_model_dir reads it
    save_file({"w": np.zeros(1, dtype=np.float32)}, str(model / "model.safetensors"))
    return {"base_model": str(model), "variants": ["baseline"]}


def parent_run(tmp_path, ctx):
    return MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}").get_run(ctx["parent_run_id"])


def test_retrain_records_the_ci_payload(params, tmp_path):
    ctx = retrain.prepare_retrain({**params, "data_version": "reviews-v3", "git_sha": "b05c5c5", "lora": {"steps": 3}},
                                  "manual__1")
    run = parent_run(tmp_path, ctx)
    assert run.data.tags["data_version"] == "reviews-v3" and run.data.tags["git_sha"] == "b05c5c5"
    assert run.data.tags["triggered_by"] == "conf" and run.data.params["lora.steps"] == "3"
    assert ctx["lora"] == {"steps": 3}


def test_retrain_takes_the_trigger_from_an_asset_event(params, tmp_path):
    ctx = retrain.prepare_retrain(params, "asset__1", asset_extras=[{"data_version": "from-asset", "other": 1}])
    run = parent_run(tmp_path, ctx)
    assert run.data.tags["data_version"] == "from-asset" and run.data.tags["git_sha"] == "unknown"
    assert run.data.tags["triggered_by"] == "asset"


def test_retrain_refuses_bad_lora_settings_before_any_work(params, tmp_path):
    with pytest.raises(GreenlaneError, match=r"params\.lora\.steps"):
        retrain.prepare_retrain({**params, "lora": {"steps": 0}}, "manual__2")
    assert not (tmp_path / "home" / "mlflow.db").exists()


def test_profile_grid_defaults_params_and_validation(params, tmp_path):
    ctx = profiling.prepare_profile(params, "manual__3")  # the default config's grid
    from tasks.config import load_config

    assert ctx["grid"] == load_config().benchmark.energy_grid.model_dump()
    no_grid = {**params, "overrides": {"benchmark.energy_grid": {"tin": [], "tout": []}}}
    assert profiling.prepare_profile(no_grid, "manual__3b")["grid"] == profiling.DEFAULT_GRID  # none configured
    ctx = profiling.prepare_profile({**params, "tin": [8, 16, 32, 64, 128], "tout": [2, 4]}, "manual__4")
    assert ctx["grid"]["tin"] == [8, 16, 32, 64, 128] and ctx["grid"]["tout"] == [2, 4]
    with pytest.raises(GreenlaneError, match="at least 10 cells"):
        profiling.prepare_profile({**params, "tin": [8, 16], "tout": [2, 4]}, "manual__5")
    exp = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}").get_experiment_by_name("greenlane-stand-in")
    names = {r.info.run_name for r in MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}").search_runs([exp.experiment_id])}
    assert not any("manual__5" in n for n in names)  # refused before any run was made


def test_no_champion_no_profile_job(params):
    ctx = profiling.prepare_profile(params, "manual__6")
    assert profiling.champion_jobs(ctx) == []
