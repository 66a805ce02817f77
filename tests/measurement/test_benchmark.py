"""The benchmark runner end to end on the tiny model, and the new benchmark config fields."""

from __future__ import annotations

import json

import pytest

from tasks.config import load_config
from tasks.errors import GreenlaneError
from tasks.measurement.accuracy import DATA
from tasks.measurement.record import BenchmarkRecord

FAST = ["eval.limit=4", "eval.perplexity_tokens=16", "benchmark.prompts=2", "benchmark.max_new_tokens=3",
        "benchmark.warmup=1", "benchmark.repeats=2", "benchmark.max_repeats=3", "benchmark.batch_sizes=[1, 2]",
        "benchmark.energy_grid={tin: [2, 4, 8, 16, 32], tout: [2, 3]}", "targets.cpu.energy_meter=estimate",
        "eval.lm_eval_tasks=[sentiment_mc]", f"eval.lm_eval_include_path={DATA / 'lm_eval'}", "eval.lm_eval_limit=3"]


@pytest.fixture(scope="module")
def record(tiny_dir, tmp_path_factory):
    from tasks.config import VariantSpec
    from tasks.measurement.benchmark import run_benchmark
    from tasks.variants import build_variant

    tmp = tmp_path_factory.mktemp("bench")
    variant = tmp / "baseline"
    build_variant(tiny_dir, VariantSpec(name="baseline"), variant, base_model=str(tiny_dir))
    cfg = load_config(None, FAST)
    out = tmp / "out"
    rec = run_benchmark(variant, "cpu", cfg.targets["cpu"], cfg.benchmark, cfg.eval, out,
                        reference_dir=tiny_dir, reference_cache=tmp / "reference.npz", seed=3)
    return rec, out, tmp / "reference.npz"


def test_the_baseline_reads_its_accuracy_from_the_reference_pass(record, tiny_dir):
    from tasks import runtimes
    from tasks.measurement import accuracy, fidelity

    rec, _, cache = record
    scored = accuracy.task_accuracy(runtimes.load(tiny_dir), accuracy.load_split("sentiment", "eval", 4), "sentiment")
    assert rec.quality.correct == scored["correct"] == fidelity.Reference.load(cache).accuracy()["correct"]
    assert rec.fidelity.fidelity_method.startswith("identity:")


def test_record_has_ci_phase_batch_fidelity_fields(record):
    rec, out, _ = record
    passes = rec.convergence.passes
    assert 2 <= passes <= 3 and rec.latency.latency_n == 2 * passes and rec.energy.energy_n == passes
    assert rec.latency.latency_ci95_ms > 0 and rec.energy.energy_j_per_1k_tokens_ci95 is not None
    assert rec.energy.energy_j_per_1k_tokens_mean == pytest.approx(rec.energy.energy_j_per_1k_tokens)
    assert rec.phases.prefill_j_per_token > 0 and rec.phases.decode_ms_per_token > 0
    assert rec.phases.phase_energy_source.startswith("estimate:") and rec.energy.energy_source.startswith("estimate:")
    assert set(rec.batch.tokens_per_s_by_batch) == set(rec.batch.j_per_token_by_batch) == {1, 2}
    assert rec.batch.energy_optimal_batch_size in (1, 2) and rec.batch.throughput_optimal_batch_size in (1, 2)
    assert rec.fidelity.kl_to_baseline == pytest.approx(0.0, abs=1e-9) and rec.fidelity.top1_agreement == 1.0
    q = rec.quality
    assert q.accuracy_ci95_lo <= q.accuracy <= q.accuracy_ci95_hi and q.accuracy_ci95 > 0 and len(q.correct) == 4
    assert rec.prompt_order_seed == 3 and rec.carbon is None  # carbon is the pipeline's, after the benchmark
    written = json.loads((out / "benchmark.json").read_text())
    assert written["passes"] == passes and BenchmarkRecord.from_dict(written) == rec


def test_energy_grid_fits_and_saves(record):
    from tasks.energy_model import load_models

    rec, out, _ = record
    models = load_models(out / "energy_model.json")
    assert set(models) == {"energy_j", "runtime_s"} and models["energy_j"].n_points == 10
    fit = rec.energy_fit
    assert fit.energy_model_cells == 10 and fit.energy_model["energy_j"]["min_prediction"] >= 0
    assert fit.energy_model_source.startswith("estimate:")
    assert (out / "energy_grid.csv").read_text().startswith("model,tin,tout,energy_j,runtime_s")


def test_record_covers_logged_metrics(record):
    from records import LOGGED_BEFORE

    rec, _, _ = record
    carbon = {k for k in LOGGED_BEFORE if k.startswith(("gco2e", "usd"))}  # added by the pipeline, not measured here
    assert sorted(set(LOGGED_BEFORE) - carbon - set(rec.metrics())) == []
    assert {"tokens_per_s_bs2", "j_per_token_bs2"} <= set(rec.metrics())
    assert {"lm_eval/sentiment_mc/acc", "lm_eval/sentiment_mc/n"} <= set(rec.metrics())  # the optional harness


@pytest.mark.parametrize(
    "override, message",
    [
        ("benchmark.max_repeats=1", "max_repeats (1) must be >= repeats (2)"),
        ("benchmark.ci_target=0", "ci_target"),
        ("benchmark.batch_sizes=[]", "non-empty list"),
        ("benchmark.batch_sizes=[0, 4]", "batch sizes"),
        ("benchmark.energy_grid={tin: [8, 16], tout: [4, 8]}", "at least 10 cells"),
        ("benchmark.energy_grid={tin: [0, 8, 16, 32, 64], tout: [4, 8]}", "token counts must be from 1"),
    ],
)
def test_bad_benchmark_config_fails_at_load(override, message):
    with pytest.raises(GreenlaneError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(None, [override])


def test_benchmark_defaults_stay_cheap():
    bench = load_config().benchmark
    assert bench.batch_sizes == [1] and bench.ci_target == 0.05
    # the default run fits E(tin, tout) for routing and the report, on a small grid
    grid = bench.energy_grid
    assert grid.enabled and 10 <= len(grid.tin) * len(grid.tout) <= 16 and max(grid.tout) <= 64
