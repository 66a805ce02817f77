"""Re-running the tasks of one DAG run (an Airflow retry or a cleared task) duplicates nothing in MLflow."""

from __future__ import annotations

from mlflow import MlflowClient

FAST = {"eval.limit": 4, "eval.perplexity_tokens": 32, "benchmark.prompts": 2, "benchmark.max_new_tokens": 3,
        "benchmark.repeats": 1, "variants": ["baseline", "bf16"], "gates.min_accuracy": 0,
        "gates.max_accuracy_drop": 1, "gates.min_top1_agreement": None, "targets.cpu.energy_meter": "estimate"}


def test_rerunning_every_task_of_a_dag_run_reuses_runs_and_versions(tiny_dir, tmp_path, monkeypatch):
    from tasks import pipeline
    from tasks.tracking import registry

    monkeypatch.setenv("GREENLANE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    overrides = {**FAST, "base_model": str(tiny_dir)}

    def one_pass():
        ctx = pipeline.prepare(None, overrides, "manual__rerun")
        files = []
        for variant in pipeline.plan(ctx):
            pipeline.make_variant(ctx, variant)
            files.append(pipeline.benchmark(ctx, variant, "cpu"))
        return ctx, pipeline.promote(ctx, files)

    ctx1, champions1 = one_pass()
    ctx2, champions2 = one_pass()
    assert ctx1["parent_run_id"] == ctx2["parent_run_id"]

    c = MlflowClient(ctx1["tracking_uri"])
    all_runs = c.search_runs([ctx1["experiment_id"]])
    assert sorted(r.info.run_name for r in all_runs) == ["baseline@cpu", "bf16@cpu", "optimize manual__rerun"]
    assert all(r.info.status == "FINISHED" for r in all_runs)
    versions = c.search_model_versions(f"name='{ctx1['registered_model']}'")
    assert len(versions) == 2
    by_variant = {v.tags["variant"]: str(v.version) for v in versions}
    champion = c.get_model_version_by_alias(ctx1["registered_model"], "champion-cpu")
    assert champion.tags["variant"] == champions2["cpu"]  # the second pass re-measured, so it decides
    history = registry.champion_history(ctx1["tracking_uri"], ctx1["registered_model"], "cpu")
    if champions1 == champions2:  # the same version promoted twice: no history entry pointing at itself
        assert history == []
    else:  # bf16 and baseline are close on the tiny model: a re-measurement may flip them
        assert history == [by_variant[champions1["cpu"]]]
