"""Which confidence intervals does the benchmark reach on the real SmolLM2, and at what n?

Builds the `baseline` and `bf16` variants of the bundled SmolLM2-135M-Instruct,
runs the benchmark runner on each exactly as the pipeline does (fidelity against
the base model, cached once), and prints per variant: passes run and whether the
CI target was met, per-request latency and energy per 1k tokens as mean +- 95% CI
half-width (and that as % of the mean) with n, the prefill/decode split, the
fidelity figures and the paired-bootstrap accuracy delta against the baseline.
With --grid it also sweeps a small (tin, tout) grid and prints the fitted
energy and runtime models. Energy is whatever meter `auto` picks here; on a
machine without counters that is an estimate, and the source is printed.

    .venv/bin/python benchmarks/ci_widths.py [--threads 1] [--max-repeats 8] [--grid] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
GRID = "{tin: [8, 32, 64, 128, 256], tout: [4, 16, 32]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="baseline,bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="minimum passes")
    parser.add_argument("--max-repeats", type=int, default=8)
    parser.add_argument("--ci-target", type=float, default=0.05)
    parser.add_argument("--eval-limit", type=int, default=100)
    parser.add_argument("--meter", default="auto")
    parser.add_argument("--grid", action="store_true", help=f"also sweep the token grid {GRID}")
    parser.add_argument("--json", type=Path, help="write the records (without samples) here")
    args = parser.parse_args()

    from tasks.compression import PRESETS
    from tasks.config import VariantSpec, load_config
    from tasks.measurement.benchmark import run_benchmark
    from tasks.measurement.stats import accuracy_delta_ci95
    from tasks.models import resolve_base
    from tasks.variants import build_variant

    overrides = [f"benchmark.prompts={args.prompts}", f"benchmark.max_new_tokens={args.max_new_tokens}",
                 f"benchmark.repeats={args.repeats}", f"benchmark.max_repeats={args.max_repeats}",
                 f"benchmark.ci_target={args.ci_target}", f"eval.limit={args.eval_limit}",
                 f"targets.cpu.energy_meter={args.meter}"]
    if args.threads:
        overrides.append(f"benchmark.threads={args.threads}")
    if args.grid:
        overrides.append(f"benchmark.energy_grid={GRID}")
    cfg = load_config(None, overrides)
    base = resolve_base("bundled:SmolLM2-135M-Instruct", REPO / ".greenlane" / "cache")
    records = {}
    with tempfile.TemporaryDirectory(prefix="greenlane-ci-widths-") as tmp:
        for name in args.variants.split(","):
            vdir = Path(tmp) / name
            build_variant(base, VariantSpec(name=name, chain=PRESETS.get(name, [])), vdir, base_model=str(base))
            t0 = time.perf_counter()
            rec = run_benchmark(vdir, "cpu", cfg.targets["cpu"], cfg.benchmark, cfg.eval, Path(tmp) / f"out-{name}",
                                reference_dir=base, reference_cache=Path(tmp) / "reference.npz", seed=cfg.seed).to_dict()
            rec["benchmark_wall_s"] = time.perf_counter() - t0
            records[name] = rec
            report(rec)
    if "baseline" in records:
        for name, rec in records.items():
            if name != "baseline":
                d = accuracy_delta_ci95(records["baseline"], rec)
                print(f"accuracy delta {name} - baseline: {d['accuracy_delta']:+.3f} "
                      f"[{d['accuracy_delta_ci95_lo']:+.3f}, {d['accuracy_delta_ci95_hi']:+.3f}] (paired bootstrap, "
                      f"n={d['accuracy_delta_n']})")
    if args.json:
        args.json.write_text(json.dumps({k: {f: v for f, v in r.items() if f != "samples"} for k, r in records.items()},
                                        indent=2))


def _ci(mean: float, half: float | None, n: int, unit: str) -> str:
    if half is None:
        return f"{mean:.4g} {unit} (n={n}, CI undefined)"
    return f"{mean:.4g} +- {half:.3g} {unit} ({100 * half / mean:.1f}% of mean, n={n})"


def report(r: dict) -> None:
    print(f"\n== {r['variant']} ({r['chain']}), {r['hardware']['threads']} threads, "
          f"benchmark {r['benchmark_wall_s']:.0f} s")
    print(f"passes {r['passes']} (target {100 * r['ci_target']:.0f}%: {'met' if r['ci_converged'] else 'NOT met'})")
    print("latency/request ", _ci(r["latency_mean_ms"], r["latency_ci95_ms"], r["latency_n"], "ms"))
    print("energy/1k tokens", _ci(r["energy_j_per_1k_tokens_mean"], r["energy_j_per_1k_tokens_ci95"], r["energy_n"], "J"),
          f"[{r['energy_source']}]")
    print(f"prefill {r['prefill_ms_per_token']:.2f} ms/token {r['prefill_j_per_token']:.4f} J/token | "
          f"decode {r['decode_ms_per_token']:.1f} ms/token {r['decode_j_per_token']:.3f} J/token "
          f"[{r['phase_energy_source']}]; ttft {r['ttft_ms']:.0f} ms, tpot {r['tpot_ms']:.1f} ms (logits clock)")
    print(f"accuracy {r['accuracy']:.3f} [{r['accuracy_ci95_lo']:.3f}, {r['accuracy_ci95_hi']:.3f}] (Wilson, "
          f"n={r['accuracy_n']}); KL to base {r['kl_to_baseline']:.3g} nats, top-1 agreement {r['top1_agreement']:.3f} "
          f"over {r['fidelity_positions']} positions (base top-32 mass {r['reference_topk_mass']:.3f})")
    for target, m in r.get("energy_model", {}).items():
        print(f"{target} model: form {m['form']} ({m['weighting']}), R^2 {m['r2']:.3f}, CV MdAPE "
              f"{100 * m['cv_mdape']:.1f}%, min prediction {m['min_prediction']:.3g}, "
              + ", ".join(f"{c:.3g}*{t}" for t, c in zip(m["terms"], m["coefficients"])))


if __name__ == "__main__":
    main()
