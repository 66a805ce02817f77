"""Benchmark records for tests that need a table of numbers, not a measurement (promotion, the record's JSON).

Every figure not named gets a plausible value of the tiny model on a CPU; the ones a test is about are
arguments. A record is a tasks.measurement.record.BenchmarkRecord, the type the benchmark produces.
"""

from __future__ import annotations

from tasks.carbon.accounting import CarbonBreakdown
from tasks.measurement.energy import EnergyReading
from tasks.measurement.record import (BatchSweep, BenchmarkRecord, Convergence, Energy, Fidelity, Hardware, Latency,
                                      Memory, PhaseSplit, Quality)

# The metric names earlier runs, the README and the end-to-end test use (the list tracking/runs.py kept by hand).
LOGGED_BEFORE = (
    "energy_j_per_1k_tokens", "gco2e_per_1k_tokens", "gco2e_operational_per_1k_tokens",
    "gco2e_embodied_per_1k_tokens", "usd_per_1k_tokens", "busy_s_per_1k_tokens",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_ms", "tpot_ms", "tokens_per_s",
    "accuracy", "perplexity", "model_size_mb", "model_memory_mb", "peak_memory_mb", "param_count",
    "latency_mean_ms", "latency_ci95_ms", "latency_n", "energy_j_per_1k_tokens_ci95", "energy_n", "passes",
    "accuracy_ci95", "prefill_ms_per_token", "decode_ms_per_token", "prefill_j_per_token", "decode_j_per_token",
    "energy_optimal_batch_size", "throughput_optimal_batch_size", "kl_to_baseline", "top1_agreement",
    "energy_model_cv_mdape", "runtime_model_cv_mdape",
)


def carbon(g: float | None, source: str, energy_j_per_1k_tokens: float = 90.0) -> CarbonBreakdown:
    return CarbonBreakdown(
        gco2e_operational_per_1k_tokens=g, gco2e_embodied_per_1k_tokens=0.0, gco2e_per_1k_tokens=g,
        energy_j_per_1k_tokens=energy_j_per_1k_tokens, busy_s_per_1k_tokens=2.0, usd_per_1k_tokens=None,
        energy_source=source, ci_g_per_kwh=262.0, ci_source="test", region="CISO", hardware="cpu",
        embodied_kg=100.0, embodied_source="test", lifetime_years=5.0, pue=1.0,
    )


def make_record(variant: str = "baseline", g: float | None = 1.0, acc: float | None = 0.8, p95: float = 500.0,
                target: str = "cpu", source: str = "estimate:codecarbon-cpu-load", correct: list[int] | None = None,
                peak_memory_mb: float | None = 500.0, top1_agreement: float | None = None,
                energy_j_per_1k_tokens: float = 90.0, with_carbon: bool = True, **parts) -> BenchmarkRecord:
    """A record with the named figures; `parts` replaces whole parts (e.g. `batch=BatchSweep(...)`)."""
    reading = EnergyReading(energy_j=0.9, duration_s=0.02, source=source, details={"cpu_j": 0.9})
    fields = dict(
        variant=variant, target=target, chain="(none)", runtime="transformers", device="cpu",
        hardware=Hardware(configured="cpu", machine="x86_64", processor="test cpu", threads=None),
        energy=Energy(energy_j_per_1k_tokens=energy_j_per_1k_tokens, busy_s_per_1k_tokens=2.0,
                      energy_j_per_1k_tokens_mean=energy_j_per_1k_tokens, energy_j_per_1k_tokens_ci95=1.5, energy_n=3,
                      energy_source=source, energy_measured=not source.startswith("estimate:"), reading=reading),
        latency=Latency(requests=12, latency_mean_ms=p95 * 0.8, latency_ci95_ms=10.0, latency_n=12, output_tokens=384,
                        prompt_tokens=240, ttft_ms=20.0, tpot_ms=10.0, latency_p50_ms=p95 * 0.8, latency_p95_ms=p95,
                        latency_p99_ms=p95 * 1.1, tokens_per_s=60.0),
        convergence=Convergence(passes=3, ci_target=0.05, ci_converged=True),
        phases=PhaseSplit(prefill_ms_per_token=0.5, decode_ms_per_token=10.0, prefill_j_per_token=0.01,
                          decode_j_per_token=0.09, prefill_j_per_token_ci95=None, decode_j_per_token_ci95=0.001,
                          phase_split="test", phase_energy_source=source),
        batch=BatchSweep({1: 60.0}, {1: 0.09}, 1, 1),
        quality=Quality(accuracy=acc, accuracy_n=len(correct) if correct else 100, accuracy_ci95=0.08,
                        accuracy_ci95_lo=(acc or 0) - 0.08, accuracy_ci95_hi=(acc or 0) + 0.08, perplexity=12.0,
                        perplexity_tokens=256, correct=list(correct or [])),
        fidelity=Fidelity(kl_to_baseline=None if top1_agreement is None else 0.01, top1_agreement=top1_agreement),
        memory=Memory(param_count=135_000_000, model_size_mb=540.0, model_memory_mb=540.0,
                      peak_memory_mb=peak_memory_mb, peak_memory_source="test", load_s=1.0),
        prompt_order_seed=0,
        carbon=carbon(g, source, energy_j_per_1k_tokens) if with_carbon else None,
    )
    return BenchmarkRecord(**{**fields, **parts})
