"""Decode speed of each runtime and format against the memory-bandwidth roofline, SmolLM2-135M on this CPU.

Decoding one token reads every weight once, so a model cannot decode faster
than (weight bytes) / (memory read bandwidth): that is the roofline. For each
variant: build it from the bundled base model with `build_variant` (cached
under `--out`; `--fresh` rebuilds), load it in its own runtime with
`--threads` threads, warm up, then time R greedy requests of 64 new tokens
after a chat prompt (ignore_eos) and take the median decode time per token
(`Generation.tpot_s`: after the first token), and one prefill of 128 tokens.
The read bandwidth is measured in the same run with the same thread count
(numpy max over a 1 GB float32 array, one slice per thread), before and after
the variants; the roofline uses the higher of the two.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/runtime_roofline.py [--variants baseline gguf-q4_k_m ...]
        [--threads N] [--requests R] [--out DIR] [--fresh]

Prints figures and asserts nothing. Caveats:
- Weight bytes are the sizes of the variant's weight files in its runtime's
  format (safetensors / .gguf / .onnx + .onnx.data), a proxy for what decode
  reads. SmolLM2 ties its embedding to the LM head: stored once, the LM head
  reads all of it per token (the embedding lookup only one row), so the proxy
  holds; a format that stores an untied copy counts the embedding twice, and
  its roofline is too pessimistic by that copy (~113 MB fp32, ~28M params).
- The KV cache and activations are not counted (small at ~100 tokens of context).
- At 135M params per-token overheads (Python, per-operator dispatch, the
  sampler) weigh as much as reading the weights: a ratio well above 1 says the
  time goes to those overheads or to compute (dequantizing), not to memory.
- The machine is shared: the load average is printed; compare rows within one run.
  With other jobs busy, `--threads` = every core can be 5-10x slower than
  `--threads 1` (transformers, llama.cpp): each operator ends in a barrier that
  waits for a thread the scheduler has given away. Run both when the load is up.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from tasks.compression import METHODS, PRESETS  # noqa: E402
from tasks.config import BUNDLED_MODEL, VariantSpec, greenlane_home  # noqa: E402

VARIANTS = ["baseline", "bf16", "gguf-q8_0", "gguf-q4_k_m", "gguf-q5_k_m", "onnx-int4", "onnx-fp32", "onnx-int8"]
PROMPT = "Give three tips for saving energy at home."
NEW_TOKENS = 64
PREFILL_TOKENS = 128
# The files each runtime reads its weights from (a variant directory may keep others, e.g. the tokenizer).
WEIGHT_FILES = {
    "transformers": ("*.safetensors",),
    "llama.cpp": ("*.gguf",),
    "onnxruntime-genai": ("*.onnx", "*.onnx.data"),
}


def read_bandwidth_gbs(threads: int, gbytes: float = 1.0, reps: int = 5) -> float:
    """Memory read bandwidth, GB/s (1e9 bytes): each thread reduces its slice of one float32 array, best of
    `reps`. numpy releases the GIL in reductions, so the threads read in parallel."""
    data = np.ones(int(gbytes * 1e9) // 4, dtype=np.float32)  # written once, so every page is resident
    parts = np.array_split(data, threads)
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(reps):
            t0 = time.perf_counter()
            # max, not sum: float32 pairwise summation is compute-bound on one core here (~9 vs ~11 GB/s)
            list(pool.map(np.max, parts))
            best = min(best, time.perf_counter() - t0)
    return data.nbytes / best / 1e9


def weight_bytes(variant_dir: Path, runtime: str) -> tuple[int, str]:
    """Bytes of the weight files the runtime loads, and their names."""
    files = sorted({p for pattern in WEIGHT_FILES[runtime] for p in variant_dir.glob(pattern)})
    return sum(p.stat().st_size for p in files), ", ".join(p.name for p in files)


def measure(variant_dir: Path, threads: int, requests: int) -> dict:
    from tasks import runtimes
    from tasks.measurement.accuracy import heldout_text
    from tasks.runtimes.base import chat_ids

    runtime = runtimes.load(variant_dir, device="cpu", threads=threads)
    ids = chat_ids(runtime.tokenizer, PROMPT)
    runtime.generate(ids, NEW_TOKENS, ignore_eos=True)  # warm-up: first-call allocations, kernel selection
    tpots = [runtime.generate(ids, NEW_TOKENS, ignore_eos=True).tpot_s for _ in range(requests)]
    long_ids = runtime.tokenizer(heldout_text())["input_ids"][:PREFILL_TOKENS]
    runtime.prefill(long_ids)  # warm-up at this length
    t0 = time.perf_counter()
    runtime.prefill(long_ids)
    prefill_s = time.perf_counter() - t0
    name = runtime.name
    runtime.close()
    nbytes, files = weight_bytes(variant_dir, name)
    return {"runtime": name, "weight_bytes": nbytes, "files": files, "tpots_s": tpots,
            "prefill_ms_per_token": prefill_s * 1000 / len(long_ids)}


def skip_reason(name: str) -> str | None:
    from tasks import runtimes
    from tasks.variants import chain_runtime

    if name not in PRESETS:
        return "no such preset (is its export method registered yet?)"
    missing = [s["method"] for s in PRESETS[name] if s["method"] not in METHODS]
    if missing:
        return f"method {', '.join(missing)} is not registered"
    runtime = chain_runtime(VariantSpec(name=name, chain=PRESETS[name]))
    if not runtimes.installed(runtime):
        return f"runtime {runtime} is not installed"
    return None


def quant_label(name: str) -> str:
    """The preset's chain in short: `gguf(quant=q4_k_m)`, `cast(dtype=bfloat16)`, or `fp32` for the base."""
    steps = [f"{s['method']}({','.join(f'{k}={v}' for k, v in s.items() if k != 'method')})" for s in PRESETS[name]]
    return " -> ".join(steps) or "fp32"


def table(records: list[dict], bandwidth_gbs: float) -> str:
    base = next((r for r in records if r["variant"] == "baseline"), None)
    lines = [
        "| variant | runtime | format/quant | weight MB | decode ms/token (median, min-max) | roofline ms/token "
        "| measured/roofline | speed-up vs baseline | prefill ms/token |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        decode = statistics.median(r["tpots_s"]) * 1000
        roofline = r["weight_bytes"] / (bandwidth_gbs * 1e9) * 1000
        speedup = f"{statistics.median(base['tpots_s']) * 1000 / decode:.2f}x" if base else "-"
        lines.append(
            f"| {r['variant']} | {r['runtime']} | `{quant_label(r['variant'])}` | {r['weight_bytes'] / 1e6:.0f} "
            f"| {decode:.1f} ({min(r['tpots_s']) * 1000:.1f}-{max(r['tpots_s']) * 1000:.1f}) | {roofline:.1f} "
            f"| {decode / roofline:.1f} | {speedup} | {r['prefill_ms_per_token']:.2f} |"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, metavar="PRESET")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="default: every core")
    parser.add_argument("--requests", type=int, default=3, help="timed requests per variant (after one warm-up)")
    parser.add_argument("--out", type=Path, default=greenlane_home() / "runtime_roofline")
    parser.add_argument("--fresh", action="store_true", help="rebuild variants already built under --out")
    args = parser.parse_args()

    from tasks.models import resolve_base
    from tasks.variants import METADATA, build_variant

    started = time.perf_counter()
    bw_before = read_bandwidth_gbs(args.threads)
    print(f"read bandwidth before: {bw_before:.1f} GB/s ({args.threads} threads); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    base_dir = resolve_base(BUNDLED_MODEL, greenlane_home() / "cache")
    records = []
    for name in args.variants:
        reason = skip_reason(name)
        if reason:
            print(f"skipping {name}: {reason}", flush=True)
            continue
        variant_dir = args.out / "variants" / name
        if args.fresh or not (variant_dir / METADATA).is_file():
            t0 = time.perf_counter()
            build_variant(base_dir, VariantSpec(name=name, chain=PRESETS[name]), variant_dir, base_model=BUNDLED_MODEL)
            print(f"built {name} in {time.perf_counter() - t0:.0f} s", flush=True)
        record = {"variant": name, **measure(variant_dir, args.threads, args.requests)}
        records.append(record)
        print(f"{name}: {record['runtime']}, weights {record['files']}, "
              f"decode {statistics.median(record['tpots_s']) * 1000:.1f} ms/token", flush=True)
    bw_after = read_bandwidth_gbs(args.threads)
    bandwidth = max(bw_before, bw_after)  # the roofline is a bound: the best bandwidth seen

    print()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; threads: {args.threads}; "
          f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"read bandwidth: {bw_before:.1f} GB/s before, {bw_after:.1f} GB/s after; roofline uses {bandwidth:.1f}")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"decode: {NEW_TOKENS} greedy tokens x {args.requests} requests; prefill: {PREFILL_TOKENS} tokens; "
          f"wall {time.perf_counter() - started:.0f} s")
    print()
    print(table(records, bandwidth))


if __name__ == "__main__":
    main()
