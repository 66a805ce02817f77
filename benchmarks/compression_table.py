"""What each compression method costs and keeps, for SmolLM2-135M on this CPU.

For every variant: build it from the bundled base model with the same
`build_variant` the DAG uses (wall time to produce), then reload it and
measure its parameter count, size on disk (safetensors), perplexity on the
held-out text (first 1024 tokens), task accuracy (first 100 examples of the
sentiment eval split, few-shot log-likelihood), the time of one forward pass
over 128 tokens, and one greedy sample.
Prints a markdown table, then the samples. Each variant's record is written
to `--out` as JSON and reused on the next run (delete it, or pass --fresh,
to measure again), so an interrupted run resumes where it stopped.

    .venv/bin/python benchmarks/compression_table.py [--variants lora prune ...] [--out DIR] [--fresh]

Build times are wall-clock on a shared machine: expect +-20% run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tasks.compression import PRESETS  # noqa: E402
from tasks.config import BUNDLED_MODEL, VariantSpec, greenlane_home  # noqa: E402

# One variant per family and the compositions, as proposed for the demo config.
VARIANTS = [
    "baseline", "bf16", "bnb-int8", "bnb-nf4", "quanto-int8", "quanto-int4",
    "prune", "sparse", "distill", "lora", "qlora", "prune-heal", "prune-heal-nf4", "lora-int8",
]
SAMPLE_PROMPT = "Give three tips for saving energy at home."
SAMPLE_TOKENS = 40
FORWARD_TOKENS = 128  # one forward pass over this many tokens: a prefill-speed figure, median of 3


def measure(variant_dir: Path) -> dict:
    from tasks import runtimes
    from tasks.measurement.accuracy import heldout_text, load_split, perplexity, task_accuracy
    from tasks.runtimes.base import chat_ids
    from tasks.variants import read_metadata

    meta = read_metadata(variant_dir)
    runtime = runtimes.load(variant_dir)  # the variant's own runtime (transformers, llama.cpp, ORT GenAI)
    ppl = perplexity(runtime, heldout_text(), 1024)
    acc = task_accuracy(runtime, load_split("sentiment", "eval", 100))
    sample = runtime.generate(chat_ids(runtime.tokenizer, SAMPLE_PROMPT), SAMPLE_TOKENS, ignore_eos=False).text
    ids = runtime.tokenizer(heldout_text())["input_ids"][:FORWARD_TOKENS]
    times = []
    for _ in range(4):  # the first is a warm-up
        t0 = time.perf_counter()
        runtime.prefill(ids)
        times.append(time.perf_counter() - t0)
    runtime.close()
    return {
        "variant": meta["name"],
        "chain": meta["chain_str"],
        "runtime": runtime.name,
        "build_s": meta["build_wall_s"],
        "param_count": meta["param_count"],
        "size_mb": meta["size_mb"],
        "perplexity": ppl["perplexity"],
        "accuracy": acc["accuracy"],
        "accuracy_n": acc["accuracy_n"],
        "forward_ms": statistics.median(times[1:]) * 1000,
        "sample": sample,
    }


def table(records: list[dict]) -> str:
    lines = [
        f"| variant | chain | build s | params (M) | size MB | perplexity | accuracy | forward ms ({FORWARD_TOKENS} tok) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        chain = short_chain(PRESETS[r["variant"]]) if r["variant"] in PRESETS else r["chain"]
        lines.append(
            f"| {r['variant']} | `{chain}` | {r['build_s']:.0f} | {r['param_count'] / 1e6:.1f} | {r['size_mb']:.0f} "
            f"| {r['perplexity']:.2f} | {r['accuracy']:.2f} | {r['forward_ms']:.0f} |"
        )
    return "\n".join(lines)


def short_chain(chain: list[dict]) -> str:
    """`prune(ratio=0.25) -> bnb(bits=4)`: the parameters the preset sets (the rest are defaults)."""
    steps = [f"{s['method']}({','.join(f'{k}={v}' for k, v in s.items() if k != 'method')})" for s in chain]
    return " -> ".join(steps) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=sorted(PRESETS), metavar="PRESET")
    parser.add_argument("--out", type=Path, default=greenlane_home() / "compression_table")
    parser.add_argument("--fresh", action="store_true", help="rebuild and remeasure variants already recorded")
    args = parser.parse_args()

    from tasks.models import resolve_base
    from tasks.variants import build_variant

    base_dir = resolve_base(BUNDLED_MODEL, greenlane_home() / "cache")
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in args.variants:
        record_file = args.out / f"{name}.json"
        if record_file.is_file() and not args.fresh:
            records.append(json.loads(record_file.read_text()))
            continue
        variant_dir = args.out / "variants" / name
        t0 = time.perf_counter()
        build_variant(base_dir, VariantSpec(name=name, chain=PRESETS[name]), variant_dir, base_model=BUNDLED_MODEL)
        print(f"built {name} in {time.perf_counter() - t0:.0f} s", flush=True)
        record = measure(variant_dir)
        record_file.write_text(json.dumps(record, indent=2))
        records.append(record)
        print(table([record]).splitlines()[-1], flush=True)

    print()
    print(table(records))
    print()
    for r in records:
        print(f"- **{r['variant']}**: {r['sample'].strip()!r}")


if __name__ == "__main__":
    main()
