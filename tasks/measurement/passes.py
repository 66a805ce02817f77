"""The measured generation: repeated passes until the figures are tight, and the prefill/decode split.

Each pass generates over every prompt, in a fresh seeded random order (so slow
drift, thermal or a neighbour's load, does not always land on the same prompts),
inside its own energy window. Passes repeat from `repeats` up to `max_repeats`
until the 95% CI half-width of per-request latency, and of energy per token
across passes, are both within `ci_target` of their means.

Prefill vs decode: after each generation pass, the same prompts get a
prefill-only pass (one forward over each prompt with a KV cache, as `generate`
starts) in its own window, looped PREFILL_LOOPS times so the window is long
enough for counters that update every 10-100 ms. Prefill per token = that
window / prompt tokens. Decode = the generation window minus one prefill pass,
per decoded token (the first output token comes out of the prefill forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.config import BenchmarkConfig
from tasks.measurement import latency, stats
from tasks.measurement.energy import EnergyReading, sum_readings
from tasks.runtimes.base import Generation

PREFILL_LOOPS = 4
PHASE_SPLIT = (f"prefill: forward over each prompt (KV cache) in its own window, {PREFILL_LOOPS} loops per pass; "
               "decode: generation window minus one prefill pass, per token after the first")


@dataclass
class Pass:
    timings: list[Generation]
    generation: EnergyReading
    prefill: EnergyReading

    @property
    def output_tokens(self) -> int:
        return sum(t.output_tokens for t in self.timings)

    @property
    def j_per_1k_tokens(self) -> float:
        return self.generation.energy_j / self.output_tokens * 1000


def run_passes(runtime, prompts: list[str], cfg: BenchmarkConfig, meter, seed: int = 0):
    """Warm up, then measured passes until converged or `max_repeats`; returns (passes, samples, converged)."""
    for prompt in prompts[: cfg.warmup]:
        latency.timed_generate(runtime, prompt, cfg.max_new_tokens)
    rng = np.random.default_rng(seed)
    passes: list[Pass] = []
    samples: list[dict] = []
    converged = False
    while len(passes) < cfg.max_repeats:
        order = [prompts[i] for i in rng.permutation(len(prompts))]
        timings = []
        meter.start()
        for prompt in order:
            timing = latency.timed_generate(runtime, prompt, cfg.max_new_tokens)
            timings.append(timing)
            if not passes:
                samples.append({"prompt": prompt, "output": timing.text})
        generation = meter.stop()
        meter.start()
        for _ in range(PREFILL_LOOPS):
            for prompt in order:
                latency.prefill(runtime, prompt)
        passes.append(Pass(timings, generation, meter.stop()))
        converged = is_converged(passes, cfg.ci_target)
        if len(passes) >= cfg.repeats and converged:
            break
    return passes, samples, converged


def is_converged(passes: list[Pass], rel: float) -> bool:
    """Per-request latency and per-pass energy per token both have CI half-width <= rel x mean."""
    latencies = [t.total_s for p in passes for t in p.timings]
    return stats.within(latencies, rel) and stats.within([p.j_per_1k_tokens for p in passes], rel)


def summarize(passes: list[Pass], converged: bool, ci_target: float) -> tuple[dict, EnergyReading]:
    """Record fields for the measured passes, and the generation energy of all of them as one reading."""
    timings = [t for p in passes for t in p.timings]
    lat = latency.summarize(timings)
    energy_mean, energy_ci, energy_n = stats.mean_ci95([p.j_per_1k_tokens for p in passes])
    reading = sum_readings([p.generation for p in passes])
    return {
        **lat,
        "passes": len(passes),
        "ci_target": ci_target,
        "ci_converged": converged,
        "energy_j_per_1k_tokens_mean": energy_mean,
        "energy_j_per_1k_tokens_ci95": _finite(energy_ci),
        "energy_n": energy_n,
        **phase_split(passes),
    }, reading


def phase_split(passes: list[Pass]) -> dict:
    """Time and energy per token of prefill and of decode, means over passes."""
    pre_ms, pre_j, dec_ms, dec_j = [], [], [], []
    for p in passes:
        prompt_tokens = sum(t.prompt_tokens for t in p.timings)
        decode_tokens = sum(t.output_tokens - 1 for t in p.timings)
        one_prefill_s = p.prefill.duration_s / PREFILL_LOOPS
        one_prefill_j = p.prefill.energy_j / PREFILL_LOOPS
        pre_ms.append(one_prefill_s / prompt_tokens * 1000)
        pre_j.append(one_prefill_j / prompt_tokens)
        # Floored at 0: with a coarse meter a short window can read more than the longer one around it.
        dec_ms.append(max(0.0, p.generation.duration_s - one_prefill_s) / decode_tokens * 1000)
        dec_j.append(max(0.0, p.generation.energy_j - one_prefill_j) / decode_tokens)
    return {
        "prefill_ms_per_token": float(np.mean(pre_ms)),
        "decode_ms_per_token": float(np.mean(dec_ms)),
        "prefill_j_per_token": float(np.mean(pre_j)),
        "decode_j_per_token": float(np.mean(dec_j)),
        "prefill_j_per_token_ci95": _finite(stats.mean_ci95(pre_j)[1]),
        "decode_j_per_token_ci95": _finite(stats.mean_ci95(dec_j)[1]),
        "phase_split": PHASE_SPLIT,
        "phase_energy_source": passes[0].prefill.source,
    }


def _finite(x: float) -> float | None:
    """None (JSON null) for an undefined figure, e.g. a CI from a single pass."""
    return float(x) if np.isfinite(x) else None
