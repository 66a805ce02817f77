"""Sweeps beyond the main measurement: batch sizes, and the (tin, tout) token grid.

Batch sizes: throughput and energy per token of one left-padded batch of
`bs` prompts generating `max_new_tokens` each, `repeats` batches in one energy
window after a warm-up batch at that shape. Batch size 1 is the main
measurement itself (no extra cost), so the default `[1]` adds nothing.

Token grid: one request per (tin, tout) cell, `tin` tokens of held-out text
(no chat template, so the count is exact) and exactly `tout` generated tokens,
each in its own window; E(tin, tout) and runtime(tin, tout) are then fitted by
tasks.energy_model.fit and saved as energy_model.json beside the benchmark.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tasks.config import BenchmarkConfig, EnergyGridConfig
from tasks.measurement import accuracy, latency
from tasks.measurement.energy import EnergyReading


def batch_sweep(runtime, prompts: list[str], cfg: BenchmarkConfig, meter, bs1: EnergyReading, bs1_tokens: int) -> dict:
    """`tokens_per_s_bs{N}` and `j_per_token_bs{N}` for every configured batch size, and the optima."""
    rows = {}
    for bs in cfg.batch_sizes:
        if bs == 1:
            reading, tokens = bs1, bs1_tokens
        else:
            batch = [prompts[i % len(prompts)] for i in range(bs)]
            latency.generate_batch(runtime, batch, cfg.max_new_tokens)  # warm-up at this shape
            meter.start()
            tokens = sum(latency.generate_batch(runtime, batch, cfg.max_new_tokens) for _ in range(cfg.repeats))
            reading = meter.stop()
        rows[bs] = (tokens / reading.duration_s, reading.energy_j / tokens)
    out = {}
    for bs, (tps, jpt) in rows.items():
        out[f"tokens_per_s_bs{bs}"] = tps
        out[f"j_per_token_bs{bs}"] = jpt
    out["energy_optimal_batch_size"] = min(rows, key=lambda b: rows[b][1])
    out["throughput_optimal_batch_size"] = max(rows, key=lambda b: rows[b][0])
    return out


def energy_grid(runtime, grid: EnergyGridConfig, meter, out_dir: Path, label: str) -> dict:
    """Sweep the grid, write energy_grid.csv and energy_model.json under `out_dir`, return record fields."""
    import numpy as np

    from tasks import energy_model

    text_ids = runtime.tokenizer(accuracy.heldout_text(), add_special_tokens=False)["input_ids"]
    ids = [text_ids[i % len(text_ids)] for i in range(max(grid.tin))]  # held-out text, repeated if short
    runtime.generate(ids[: min(grid.tin)], min(grid.tout))  # warm-up
    rows = []
    source = None
    for tin, tout in energy_model.sweep_grid(grid.tin, grid.tout):
        readings = []
        for _ in range(grid.repeats):
            meter.start()
            runtime.generate(ids[:tin], tout, ignore_eos=True)
            readings.append(meter.stop())
        source = readings[0].source
        rows.append({"model": label, "tin": tin, "tout": tout,
                     "energy_j": float(np.mean([r.energy_j for r in readings])),
                     "runtime_s": float(np.mean([r.duration_s for r in readings]))})
    out_dir = Path(out_dir)
    with (out_dir / "energy_grid.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tin, tout = np.array([r["tin"] for r in rows]), np.array([r["tout"] for r in rows])
    models = {target: energy_model.fit(tin, tout, np.array([r[target] for r in rows]), target=target)
              for target in energy_model.TARGETS}
    energy_model.save_models(models, out_dir / "energy_model.json")
    return {
        "energy_model": {target: {"form": m.form, "weighting": m.weighting, **m.summary()} for target, m in models.items()},
        "energy_model_source": source,
        "energy_model_cells": len(rows),
        "energy_model_cv_mdape": models["energy_j"].cv_mdape,
        "energy_model_r2": models["energy_j"].r2,
        "runtime_model_cv_mdape": models["runtime_s"].cv_mdape,
        "runtime_model_r2": models["runtime_s"].r2,
    }
