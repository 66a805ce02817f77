"""Benchmark one variant on the machine this code runs on.

Produces a plain record (a dict of numbers with units in their names, plus
labels): energy over the measured generation window and its source, latency
figures, task accuracy with per-example correctness, perplexity, size. Warm-up
requests are excluded from every figure. No carbon, no MLflow here.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from tasks.config import BenchmarkConfig, EvalConfig, TargetConfig
from tasks.measurement import accuracy, latency
from tasks.measurement.energy import EnergyReading


def load_prompts(n: int) -> list[str]:
    path = accuracy.DATA / "prompts.jsonl"
    prompts = [json.loads(line)["prompt"] for line in path.read_text().splitlines() if line.strip()]
    return [prompts[i % len(prompts)] for i in range(n)]


def make_target_meter(target: TargetConfig, out_dir: Path):
    """The energy meter for this machine: the target's choice, or the best available for `auto`."""
    from tasks.measurement.meters import select_meter

    # codecarbon wants a country for its own (unused here) carbon figure; ours comes from tasks.carbon.
    country = target.region if len(target.region) == 3 and target.region.isupper() else "USA"
    return select_meter(target.energy_meter, output_dir=out_dir, country_iso_code=country)


def measure_generation(model, tokenizer, cfg: BenchmarkConfig, meter) -> tuple[dict, EnergyReading, list[dict]]:
    """Warm up, then generate over the prompts `cfg.repeats` times inside one energy window."""
    prompts = load_prompts(cfg.prompts)
    for prompt in prompts[: cfg.warmup]:
        latency.timed_generate(model, tokenizer, prompt, cfg.max_new_tokens)
    timings, samples = [], []
    meter.start()
    for rep in range(cfg.repeats):
        for prompt in prompts:
            timing, text = latency.timed_generate(model, tokenizer, prompt, cfg.max_new_tokens)
            timings.append(timing)
            if rep == 0:
                samples.append({"prompt": prompt, "output": text})
    reading = meter.stop()
    return latency.summarize(timings), reading, samples


def run_benchmark(
    variant_dir: Path,
    target_name: str,
    target: TargetConfig,
    bench: BenchmarkConfig,
    evalcfg: EvalConfig,
    out_dir: Path,
) -> dict:
    """Benchmark the variant in `variant_dir`; write `benchmark.json` under `out_dir` and return the record."""
    import torch

    from tasks.models import load_model
    from tasks.variants import read_metadata

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if bench.threads:
        torch.set_num_threads(bench.threads)
    meta = read_metadata(variant_dir)
    t0 = time.perf_counter()
    model, tokenizer = load_model(variant_dir)
    load_s = time.perf_counter() - t0

    lat, reading, samples = measure_generation(model, tokenizer, bench, make_target_meter(target, out_dir))
    acc = accuracy.task_accuracy(model, tokenizer, accuracy.load_split(evalcfg.task, "eval", evalcfg.limit), evalcfg.task)
    ppl = accuracy.perplexity(model, tokenizer, accuracy.heldout_text(), evalcfg.perplexity_tokens)

    tokens = lat["output_tokens"]
    record = {
        "variant": meta["name"],
        "target": target_name,
        "chain": meta["chain_str"],
        "hardware": {"configured": target.hardware, "machine": platform.machine(), "processor": _cpu_model(),
                     "torch_threads": torch.get_num_threads()},
        "energy": reading.to_dict(),
        "energy_source": reading.source,
        "energy_measured": reading.measured,
        "energy_j_per_1k_tokens": reading.energy_j / tokens * 1000,
        "busy_s_per_1k_tokens": reading.duration_s / tokens * 1000,
        **lat,
        "accuracy": acc["accuracy"],
        "accuracy_n": acc["accuracy_n"],
        "correct": acc["correct"],
        **ppl,
        "param_count": meta["param_count"],
        "model_size_mb": meta["size_mb"],
        "model_memory_mb": model.get_memory_footprint() / 1e6,
        "load_s": load_s,
        "samples": samples,
    }
    (out_dir / "benchmark.json").write_text(json.dumps(record, indent=2))
    return record


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
