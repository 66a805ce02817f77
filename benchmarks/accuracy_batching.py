"""Measurement, not a test: the accuracy pass's forward passes one example at a time vs `logits_many` batches.

The transformers runtime scores `accuracy.BATCH` eval examples per forward pass after the few-shot prefix.
This times both ways on the same examples (alternating runs), and prints the largest difference between a
batched row and the same sequence's own logits.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/accuracy_batching.py [MODEL_DIR] [--examples 32] [--runs 3]

MODEL_DIR defaults to the bundled SmolLM2 base model, prepared by a first `greenlane run`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from tasks import runtimes
from tasks.config import greenlane_home
from tasks.evaltasks import get
from tasks.measurement import accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", nargs="?", type=Path,
                    default=greenlane_home() / "cache" / "base" / "SmolLM2-135M-Instruct")
    ap.add_argument("--examples", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    rt = runtimes.load(args.model_dir, "cpu", runtime="transformers")
    task = get("sentiment")
    prefix = rt.tokenizer(task.few_shot_prefix())["input_ids"]
    ids = [rt.tokenizer(task.prompt(ex), add_special_tokens=False)["input_ids"]
           for ex in accuracy.load_split("sentiment", "eval", args.examples)]
    rt.logits(ids[0], prefix=prefix)  # builds the prefix's KV state, as the accuracy pass's first example does
    one, many = [], []
    for run in range(args.runs):
        t = time.perf_counter()
        alone = [rt.logits(i, prefix=prefix) for i in ids]
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        batched = [row for s in range(0, len(ids), accuracy.BATCH)
                   for row in rt.logits_many(ids[s:s + accuracy.BATCH], prefix=prefix)]
        many.append(time.perf_counter() - t)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(alone, batched))
        print(f"run {run}: one by one {one[-1]:.2f} s, batches of {accuracy.BATCH} {many[-1]:.2f} s, "
              f"largest logit difference {diff:.1e}")
    a, b = statistics.median(one), statistics.median(many)
    print(f"{len(ids)} examples: median {a:.2f} s one by one vs {b:.2f} s batched ({a / b:.2f}x)")


if __name__ == "__main__":
    main()
