"""Measurement, not a test: one batched `generate_many` call vs the same prompts one `generate` at a time.

What the server's dynamic batching can gain in a runtime (transformers, onnxruntime-genai, llama.cpp).
Greedy chat prompts from the shipped data, each stopping at end of sequence or `--max-tokens`. Runs
alternate (batch, one by one, batch, ...) so a drift in the machine's load hits both; prints each run, the
medians, their ratio, and how many rows came out token for token the same both ways.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/batched_generation.py VARIANT_DIR [--batch 4] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tasks import runtimes
from tasks.measurement.accuracy import DATA
from tasks.runtimes.base import chat_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant_dir", type=Path)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    rt = runtimes.load(args.variant_dir, "cpu", args.threads)
    if not callable(getattr(rt, "generate_many", None)):
        raise SystemExit(f"{rt.name} has no generate_many: the server runs its requests one at a time")
    rows = [json.loads(line)["prompt"] for line in (DATA / "prompts.jsonl").read_text().splitlines() if line.strip()]
    batch = [chat_ids(rt.tokenizer, rows[i % len(rows)]) for i in range(args.batch)]
    rt.generate_many(batch[:2], 4)  # warm-up: first-call allocations
    timed: dict[str, list[float]] = {"batch": [], "one by one": []}
    same = tokens = 0
    for run in range(args.runs):
        t = time.perf_counter()
        together = rt.generate_many(batch, args.max_tokens)
        timed["batch"].append(time.perf_counter() - t)
        t = time.perf_counter()
        alone = [rt.generate(ids, args.max_tokens, ignore_eos=False) for ids in batch]
        timed["one by one"].append(time.perf_counter() - t)
        same = sum(a.token_ids == b.token_ids for a, b in zip(together, alone))
        tokens = sum(g.output_tokens for g in together)
        print(f"run {run}: batch {timed['batch'][-1]:.2f} s, one by one {timed['one by one'][-1]:.2f} s, "
              f"{tokens} tokens, identical rows {same}/{len(batch)}")
    b, s = statistics.median(timed["batch"]), statistics.median(timed["one by one"])
    print(f"{rt.name}, batch of {len(batch)}, up to {args.max_tokens} tokens: median {b:.2f} s batched vs "
          f"{s:.2f} s one by one ({s / b:.2f}x)")
    rt.close()


if __name__ == "__main__":
    main()
