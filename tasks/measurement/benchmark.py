"""Benchmark one variant on the machine this code runs on, in the runtime and on the device it is served with.

Produces a BenchmarkRecord (tasks.measurement.record: numbers with units in
their names, and where each came from): energy over the measured generation passes and its source, latency
figures with 95% CIs and n, the prefill/decode split, the batch-size sweep,
task accuracy with per-example correctness and its CI, fidelity to the base
model (KL, top-1 agreement), perplexity, size, and optionally a fitted
E(tin, tout) model. Warm-up requests are excluded from every figure. No
carbon, no MLflow here.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path

from tasks.config import BenchmarkConfig, EvalConfig, TargetConfig
from tasks.measurement import accuracy, fidelity, memory, passes, stats, sweeps
from tasks.measurement.machine import read_cpu_model
from tasks.measurement.record import (BatchSweep, BenchmarkRecord, Convergence, Energy, EnergyModelFit, Fidelity,
                                      Hardware, Latency, Memory, PhaseSplit, Quality)

log = logging.getLogger(__name__)


def load_prompts(n: int) -> list[str]:
    path = accuracy.DATA / "prompts.jsonl"
    prompts = [json.loads(line)["prompt"] for line in path.read_text().splitlines() if line.strip()]
    return [prompts[i % len(prompts)] for i in range(n)]


def make_target_meter(target: TargetConfig, out_dir: Path):
    """The energy meter for this machine: the target's choice, or for `auto` the best one available for the
    target's device (the GPU's counter for `cuda`, the CPU package's for `cpu`)."""
    from tasks.measurement.meters import DEVICE_AUTO_ORDER, select_meter

    # codecarbon wants a country for its own (unused here) carbon figure; ours comes from tasks.carbon.
    country = target.region if len(target.region) == 3 and target.region.isupper() else "USA"
    return select_meter(target.energy_meter, order=DEVICE_AUTO_ORDER[target.device], output_dir=out_dir,
                        country_iso_code=country)


def run_benchmark(
    variant_dir: Path,
    target_name: str,
    target: TargetConfig,
    bench: BenchmarkConfig,
    evalcfg: EvalConfig,
    out_dir: Path,
    reference_dir: Path | None = None,
    reference_cache: Path | None = None,
    seed: int = 0,
) -> BenchmarkRecord:
    """Benchmark the variant in `variant_dir`; write `benchmark.json` under `out_dir` and return the record.

    `reference_dir` is the base model the fidelity figures compare against (None: no fidelity figures);
    its distributions are cached in `reference_cache` (default: in `out_dir`), shared by a run's variants.
    `seed` fixes the prompt order of every pass.
    """
    from tasks import runtimes
    from tasks.variants import read_metadata

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = read_metadata(variant_dir)
    runtime_name = meta.get("runtime", runtimes.DEFAULT_RUNTIME)
    examples = accuracy.load_split(evalcfg.task, "eval", evalcfg.limit)
    reference = None
    if reference_dir is not None:  # before the variant loads: the base model runs here only on a cache miss
        cache = Path(reference_cache) if reference_cache else out_dir / "fidelity-reference.npz"
        reference = fidelity.load_or_build_reference(Path(reference_dir), examples, evalcfg.task, cache,
                                                     device=target.device, threads=bench.threads)
    # The baseline is the base weights, unchanged: in transformers on the reference's device its accuracy
    # pass is the reference pass, already run; it is read back, not scored a second time.
    is_reference = (reference is not None and not meta["chain"] and runtime_name == "transformers"
                    and reference.device == target.device)
    peak = memory.PeakMemory(target.device, runtime_name)
    peak.reset()
    t0 = time.perf_counter()
    runtime = runtimes.load(variant_dir, target.device, bench.threads, runtime=runtime_name)
    load_s = time.perf_counter() - t0
    try:
        meter = make_target_meter(target, out_dir)
        prompts = load_prompts(bench.prompts)
        measured, samples, converged = passes.run_passes(runtime, prompts, bench, meter, seed=seed)
        gen, reading = passes.summarize(measured, converged, bench.ci_target)
        tokens = gen["output_tokens"]
        batch = sweeps.batch_sweep(runtime, prompts, bench, meter, reading, tokens)
        grid = {}
        if bench.energy_grid.enabled:
            grid = sweeps.energy_grid(runtime, bench.energy_grid, meter, out_dir, f"{meta['name']}@{target_name}")

        comparison = fidelity.Comparison(reference) if reference is not None and not is_reference else None
        if is_reference:
            log.info("%s is the fidelity reference: its accuracy comes from the reference pass", meta["name"])
            acc = reference.accuracy()
        else:
            acc = accuracy.task_accuracy(runtime, examples, evalcfg.task, observe=comparison)
        acc_lo, acc_hi = stats.wilson_ci95(sum(acc["correct"]), acc["accuracy_n"])
        ppl = accuracy.perplexity(runtime, accuracy.heldout_text(), evalcfg.perplexity_tokens)
        peak_mb, peak_source = peak.read()
        harness = {}
        if evalcfg.lm_eval_tasks:  # optional, after the peak-memory reading: the harness's batches are not serving
            from tasks.measurement.lm_eval_adapter import run_lm_eval

            harness = run_lm_eval(runtime, evalcfg.lm_eval_tasks, evalcfg.lm_eval_include_path, evalcfg.lm_eval_limit)
        model_memory_mb = runtime.memory_footprint_mb()
    finally:
        runtime.close()

    record = BenchmarkRecord(
        variant=meta["name"], target=target_name, chain=meta["chain_str"], runtime=runtime_name, device=target.device,
        hardware=Hardware(configured=target.hardware, machine=platform.machine(),
                          processor=read_cpu_model() or platform.processor() or "unknown", threads=bench.threads),
        energy=Energy(
            energy_j_per_1k_tokens=reading.energy_j / tokens * 1000,
            busy_s_per_1k_tokens=reading.duration_s / tokens * 1000,
            energy_j_per_1k_tokens_mean=gen["energy_j_per_1k_tokens_mean"],
            energy_j_per_1k_tokens_ci95=gen["energy_j_per_1k_tokens_ci95"], energy_n=gen["energy_n"],
            energy_source=reading.source, energy_measured=reading.measured, reading=reading,
        ),
        latency=Latency.from_dict(gen), convergence=Convergence.from_dict(gen), phases=PhaseSplit.from_dict(gen),
        batch=BatchSweep.from_dict(batch),
        quality=Quality(
            accuracy=acc["accuracy"], accuracy_n=acc["accuracy_n"], accuracy_ci95=(acc_hi - acc_lo) / 2,
            accuracy_ci95_lo=acc_lo, accuracy_ci95_hi=acc_hi, perplexity=ppl["perplexity"],
            perplexity_tokens=ppl["perplexity_tokens"], correct=acc["correct"], lm_eval=harness,
        ),
        fidelity=(Fidelity.from_dict(reference.identity()) if is_reference
                  else Fidelity.from_dict(comparison.result()) if comparison is not None else Fidelity(None, None)),
        memory=Memory(param_count=meta["param_count"], model_size_mb=meta["size_mb"], model_memory_mb=model_memory_mb,
                      peak_memory_mb=peak_mb, peak_memory_source=peak_source, load_s=load_s),
        energy_fit=EnergyModelFit.from_dict(grid) if grid else None,
        prompt_order_seed=seed,
        samples=samples,
    )
    (out_dir / "benchmark.json").write_text(json.dumps(record.to_dict(), indent=2))
    return record
