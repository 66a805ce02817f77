"""Queues, worker checks and routing of jobs to queues, and the completeness check that reads the unserved record."""

import json

import pytest

from tasks import orchestration
from tasks.config import config_from_dict
from tasks.errors import GreenlaneError
from tasks.pipeline import check_complete, plan_benchmarks


def test_served_queues_always_include_default_once():
    assert orchestration.served_queues("") == ["default"]
    assert orchestration.served_queues("gpu, jetson,gpu,,default") == ["default", "gpu", "jetson"]
    assert orchestration.pool_name("gpu") == "greenlane-benchmark-gpu"


@pytest.fixture
def ctx(tmp_path):
    """A prepared-run context with three targets: on `default`, on `gpu`, on a queue the DAG has no task for."""
    from tasks.tracking import runs

    cfg = config_from_dict({
        "variants": ["baseline", "bf16"],
        "targets": {"cpu": {}, "gpu": {"queue": "gpu", "worker_wait_s": 0.2}, "lost": {"queue": "nowhere"}},
    })
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "orchestration-test")
    return {"dag_run_id": "r1", "config_file": str(run_dir / "config.json"), "run_dir": str(run_dir),
            "tracking_uri": uri, "experiment_id": exp, "parent_run_id": runs.ensure_run(uri, exp, "r1", "r1")}


def test_without_celery_the_first_queue_runs_everything(ctx, monkeypatch):
    monkeypatch.setattr(orchestration, "uses_celery", lambda: False)
    jobs = orchestration.plan_for_queue(ctx, "default", ["default", "gpu"], plan_benchmarks(ctx))
    assert len(jobs) == 6 and {j["target"] for j in jobs} == {"cpu", "gpu", "lost"}
    assert orchestration.plan_for_queue(ctx, "gpu", ["default", "gpu"], plan_benchmarks(ctx)) == []
    assert orchestration.unserved_targets(ctx) == {}


def test_under_celery_targets_go_to_their_queue_or_are_recorded_unserved(ctx, monkeypatch):
    from tasks.tracking import runs

    monkeypatch.setattr(orchestration, "uses_celery", lambda: True)
    monkeypatch.setattr(orchestration, "celery_queues", lambda: {"default": ["w-default@host"]})
    monkeypatch.setattr(orchestration.time, "sleep", lambda s: None)
    default = orchestration.plan_for_queue(ctx, "default", ["default", "gpu"], plan_benchmarks(ctx))
    assert sorted((j["variant"], j["target"]) for j in default) == [("baseline", "cpu"), ("bf16", "cpu")]
    assert orchestration.plan_for_queue(ctx, "gpu", ["default", "gpu"], plan_benchmarks(ctx)) == []  # no worker on gpu within 0.2 s
    unserved = orchestration.unserved_targets(ctx)
    assert unserved["gpu"].startswith("no worker for queue gpu")
    assert unserved["lost"].startswith("no worker for queue nowhere") and "GREENLANE_QUEUES" in unserved["lost"]
    tags = runs.client(ctx["tracking_uri"]).get_run(ctx["parent_run_id"]).data.tags
    assert tags["greenlane.unserved.gpu"] == unserved["gpu"]


def test_waits_for_a_worker_that_comes_up(monkeypatch):
    answers = iter([{}, {}, {"gpu": ["w-gpu@host"]}])
    monkeypatch.setattr(orchestration, "uses_celery", lambda: True)
    monkeypatch.setattr(orchestration, "celery_queues", lambda: next(answers))
    assert orchestration.live_workers(["gpu"], {"gpu": 60}, poll_s=0.01) == {"gpu": ["w-gpu@host"]}


def test_check_complete_names_missing_results_but_not_unserved_targets(ctx):
    from pathlib import Path

    for name in ("baseline@cpu", "bf16@cpu", "baseline@gpu"):
        (Path(ctx["run_dir"]) / "results" / name).mkdir(parents=True)
        (Path(ctx["run_dir"]) / "results" / name / "result.json").write_text("{}")
    (Path(ctx["run_dir"]) / "unserved-default.json").write_text(json.dumps({"lost": "no worker for queue nowhere"}))
    with pytest.raises(GreenlaneError, match=r"no result for bf16@gpu: "):
        check_complete(ctx)
    (Path(ctx["run_dir"]) / "results" / "bf16@gpu").mkdir()
    (Path(ctx["run_dir"]) / "results" / "bf16@gpu" / "result.json").write_text("{}")
    assert check_complete(ctx) == {"lost": "no worker for queue nowhere"}


def test_benchmark_order_is_a_seeded_shuffle_of_every_variant_x_target(tmp_path):
    import json

    from tasks.config import load_config
    from tasks.pipeline import plan_benchmarks

    cfg = load_config(None, ["variants=[baseline, bf16, quanto-int8, lora, prune-heal, bnb-nf4]"])
    (tmp_path / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    orders = {}
    for run in ("r1", "r2", "r3"):
        ctx = {"config_file": str(tmp_path / "config.json"), "dag_run_id": run}
        jobs = plan_benchmarks(ctx)
        assert sorted(j["variant"] for j in jobs) == sorted(v.name for v in cfg.variants)
        assert plan_benchmarks(ctx) == jobs  # a retried plan task plans the same order
        orders[run] = [j["variant"] for j in jobs]
    assert len({tuple(o) for o in orders.values()}) > 1  # 6 variants: three equal shuffles would be 1 in 518,400
