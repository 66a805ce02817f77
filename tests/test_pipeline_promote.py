"""pipeline.promote is the run's last act: a failure after deciding moves no alias, and only variants that passed
their target's gates become model versions (all of them with `mlflow.register_variants: all`).

One pipeline run of the tiny model (baseline and bf16, measured for real) feeds every test; each test promotes
copies of its records into a registered model of its own, with its own config and run directory. Where a test
needs a variant to fail or win, it says so by changing one figure of the copy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tasks.errors import GreenlaneError

FAST = {"eval.limit": 4, "eval.perplexity_tokens": 32, "benchmark.prompts": 2, "benchmark.max_new_tokens": 3,
        "benchmark.repeats": 1, "variants": ["baseline", "bf16"], "gates.min_accuracy": 0,
        "gates.max_accuracy_drop": 1, "gates.min_top1_agreement": None, "targets.cpu.energy_meter": "estimate"}


@pytest.fixture(scope="module")
def benchmarked(tiny_dir, tmp_path_factory):
    from tasks import pipeline

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GREENLANE_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        ctx = pipeline.prepare(None, {**FAST, "base_model": str(tiny_dir)}, "manual__promote")
        files = {}
        for variant in pipeline.plan(ctx):
            pipeline.make_variant(ctx, variant)
            files[variant] = pipeline.benchmark(ctx, variant, "cpu")
    return home, ctx, files


@pytest.fixture
def copies(benchmarked, tmp_path, monkeypatch):
    """(ctx, promote) for copies of the run's records, into registered model `name`, run directory `name-attempt`."""
    from tasks import pipeline

    home, ctx, files = benchmarked
    monkeypatch.setenv("GREENLANE_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run(name: str, config: dict | None = None, edits: dict | None = None, attempt: int = 1):
        run_dir = tmp_path / f"{name}-{attempt}"
        run_dir.mkdir()
        cfg = json.loads(Path(ctx["config_file"]).read_text())
        for section, values in (config or {}).items():
            cfg[section].update(values)
        (run_dir / "config.json").write_text(json.dumps(cfg))
        result_files = []
        for variant, path in files.items():
            record = json.loads(Path(path).read_text())
            (edits or {}).get(variant, lambda r: None)(record)
            result_files.append(str(run_dir / f"{variant}.json"))
            Path(result_files[-1]).write_text(json.dumps(record))
        local = {**ctx, "registered_model": name, "run_dir": str(run_dir), "config_file": str(run_dir / "config.json")}
        return local, lambda: pipeline.promote(local, result_files)

    return run


def slow(record: dict) -> None:  # fails the latency gate the tests set (1e6 ms)
    record["latency_p95_ms"] = 1e9


def cheap(record: dict) -> None:  # wins on carbon among the passing variants
    record["carbon"]["gco2e_per_1k_tokens"] = record["gco2e_per_1k_tokens"] = 1e-9


LATENCY_GATE = {"gates": {"max_latency_p95_ms": 1e6}}


def registered(ctx) -> dict[str, str]:
    versions = MlflowClient(ctx["tracking_uri"]).search_model_versions(f"name='{ctx['registered_model']}'")
    return {v.tags["variant"]: str(v.version) for v in versions}


def champion_version(ctx) -> str | None:
    from tasks.tracking import registry

    return registry.current_champion(ctx["tracking_uri"], ctx["registered_model"], "cpu")


def test_only_passing_variants_are_registered_and_the_decision_lists_all(copies):
    ctx, promote = copies("m-passing", LATENCY_GATE, {"bf16": slow})
    assert promote() == {"cpu": "baseline"}
    assert list(registered(ctx)) == ["baseline"]
    assert champion_version(ctx) == registered(ctx)["baseline"]
    decision = json.loads((Path(ctx["run_dir"]) / "decision.json").read_text())
    verdicts = {v["variant"]: v["passed"] for v in decision["targets"]["cpu"]["decision"]["verdicts"]}
    assert verdicts == {"baseline": True, "bf16": False}
    versions = {r["variant"]: r.get("model_version") for r in decision["results"]}
    assert versions == {"baseline": registered(ctx)["baseline"], "bf16": None}
    assert decision["targets"]["cpu"]["promoted"]["version"] == registered(ctx)["baseline"]


def test_register_all_registers_failing_variants_too(copies):
    ctx, promote = copies("m-all", {**LATENCY_GATE, "mlflow": {"register_variants": "all"}}, {"bf16": slow})
    assert promote() == {"cpu": "baseline"}
    assert sorted(registered(ctx)) == ["baseline", "bf16"]
    assert champion_version(ctx) == registered(ctx)["baseline"]


@pytest.mark.parametrize("failure", ["hours_csv missing", "what-if fails"])
def test_a_failure_after_deciding_moves_nothing(copies, monkeypatch, failure):
    from tasks.tracking import registry

    name = f"m-atomic-{failure.split()[0]}"
    ctx, promote = copies(name, LATENCY_GATE, {"bf16": slow})
    assert promote() == {"cpu": "baseline"}
    before, history = champion_version(ctx), registry.champion_history(ctx["tracking_uri"], name, "cpu")

    # Now bf16 would win; the what-if of the champion, computed before any alias moves, fails.
    config = LATENCY_GATE
    if failure == "hours_csv missing":
        config = {**LATENCY_GATE, "carbon": {"hours_csv": "/nonexistent/hours.csv"}}
    else:
        from tasks.carbon import whatif

        def broken(*args, **kwargs):
            raise GreenlaneError("intensity CSV unreadable")

        monkeypatch.setattr(whatif, "rank", broken)
    ctx2, promote2 = copies(name, config, {"bf16": cheap}, attempt=2)
    with pytest.raises(GreenlaneError):
        promote2()
    assert champion_version(ctx) == before  # the alias did not move
    assert registry.champion_history(ctx["tracking_uri"], name, "cpu") == history
    assert list(registered(ctx)) == ["baseline"]  # bf16 was not registered either
    assert not (Path(ctx2["run_dir"]) / "decision.json").exists()
    status = MlflowClient(ctx["tracking_uri"]).get_run(ctx["parent_run_id"]).info.status
    assert status == "FAILED"  # not left RUNNING


def test_alias_names_are_checked_with_mlflows_rule():
    from tasks.tracking import registry

    registry.check_alias("champion-cpu")
    registry.check_alias("champion-jetson_orin-1")
    for bad in ("champion-a/b", "champion-cpu é", "latest"):
        with pytest.raises(GreenlaneError, match="not valid for MLflow"):
            registry.check_alias(bad)
