"""Fidelity to the baseline: KL(base || variant) of next-token distributions and top-1 agreement.

Positions: every token of every eval example, after the task's few-shot prefix,
exactly as the accuracy pass scores them, so the comparison reuses that forward
pass (`task_accuracy(observe=...)`) and costs the variant nothing extra.

The reference (the base model's distributions) is computed once per run and
cached in one file: for each position, the base model's top-K token ids and
log-probabilities. That pass is the base model's own accuracy pass, so the file
also keeps its per-example correctness: the baseline variant (the base weights,
unchanged, in transformers on the same device) reuses it instead of scoring the
same examples a second time (about 70 s of a demo run on 2 cores). KL is taken over those K tokens plus one bucket for the
rest of the vocabulary. Merging tokens into a bucket can only lower KL, so the
figure is a lower bound of the full-vocabulary KL, tight when the top K hold
nearly all of the base model's mass (recorded as `reference_topk_mass`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from tasks.errors import GreenlaneError
from tasks.runtimes.base import log_softmax

TOP_K = 32
_TINY = 1e-12  # floor for a bucket's probability: log(0) when the top K hold all the mass to float precision


@dataclass
class Reference:
    token_ids: np.ndarray
    """All examples' token ids, concatenated [P]."""
    offsets: np.ndarray
    """Example i spans positions offsets[i]:offsets[i+1]."""
    topk_ids: np.ndarray
    """[P, K] the base model's K most likely next tokens per position, most likely first."""
    topk_logp: np.ndarray
    """[P, K] their natural-log probabilities."""
    meta: dict
    correct: np.ndarray
    """1/0 per example: the base model's answers in this same pass."""
    device: str
    """Where the pass ran (not part of `meta`: a reference serves every target's fidelity figures)."""

    def save(self, path: Path) -> None:
        """Atomic: written beside `path` and moved over it, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, token_ids=self.token_ids, offsets=self.offsets, topk_ids=self.topk_ids,
                     topk_logp=self.topk_logp, meta=np.array(json.dumps(self.meta)), correct=self.correct,
                     device=np.array(self.device))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "Reference":
        with np.load(path) as data:
            return cls(data["token_ids"], data["offsets"], data["topk_ids"], data["topk_logp"],
                       json.loads(str(data["meta"])), data["correct"], str(data["device"]))

    def accuracy(self) -> dict:
        """The base model's `task_accuracy` result from the reference pass."""
        correct = [int(c) for c in self.correct]
        return {"accuracy": sum(correct) / len(correct), "accuracy_n": len(correct), "correct": correct}

    def identity(self) -> dict:
        """The fidelity figures of the reference model itself: no divergence, by construction."""
        return {
            "kl_to_baseline": 0.0, "top1_agreement": 1.0, "fidelity_positions": int(self.offsets[-1]),
            "fidelity_method": "identity: the variant is the reference model (same weights, runtime and device)",
            "reference_topk_mass": float(np.exp(self.topk_logp.astype(np.float64)).sum(-1).mean()),
        }


class _Collector:
    """`observe` hook that records the base model's top-K per position."""

    def __init__(self):
        self.ids, self.topk_ids, self.topk_logp = [], [], []

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> None:
        logp = log_softmax(logits)
        part = np.argpartition(-logp, TOP_K, axis=-1)[:, :TOP_K]  # the top K, unordered (no full-vocab sort)
        index = np.take_along_axis(part, np.argsort(-np.take_along_axis(logp, part, axis=-1), axis=-1), axis=-1)
        self.ids.append(np.asarray(input_ids, dtype=np.int64))
        self.topk_ids.append(index.astype(np.int64))
        self.topk_logp.append(np.take_along_axis(logp, index, axis=-1).astype(np.float32))

    def reference(self, meta: dict, correct: list[int], device: str) -> Reference:
        offsets = np.cumsum([0] + [len(i) for i in self.ids])
        return Reference(np.concatenate(self.ids), offsets, np.concatenate(self.topk_ids),
                         np.concatenate(self.topk_logp), meta, np.asarray(correct, dtype=np.int8), device)


class Comparison:
    """`observe` hook for a variant: per-position KL(base || variant) and top-1 agreement."""

    def __init__(self, ref: Reference):
        self.ref = ref
        self.example = 0
        self.kl: list[np.ndarray] = []
        self.agree: list[np.ndarray] = []

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> None:
        i = self.example
        self.example += 1
        if i + 1 >= len(self.ref.offsets):
            raise GreenlaneError(f"fidelity reference has {len(self.ref.offsets) - 1} examples; the variant was scored on more")
        span = slice(int(self.ref.offsets[i]), int(self.ref.offsets[i + 1]))
        if not np.array_equal(np.asarray(input_ids), self.ref.token_ids[span]):
            raise GreenlaneError(f"eval example {i} tokenizes differently for the variant than for the base model; "
                                 "fidelity needs the base model's tokenizer")
        logq = log_softmax(logits)
        q_top = np.take_along_axis(logq, self.ref.topk_ids[span], axis=-1)
        p_top = self.ref.topk_logp[span].astype(np.float64)
        self.kl.append(_bucket_kl(p_top, q_top))
        self.agree.append(logq.argmax(-1) == self.ref.topk_ids[span, 0])

    def result(self) -> dict:
        if self.example != len(self.ref.offsets) - 1:
            raise GreenlaneError(f"fidelity compared {self.example} examples, the reference has {len(self.ref.offsets) - 1}")
        kl = np.concatenate(self.kl)
        return {
            "kl_to_baseline": float(kl.mean()),
            "top1_agreement": float(np.concatenate(self.agree).mean()),
            "fidelity_positions": int(kl.size),
            "fidelity_method": f"KL over base top-{TOP_K} + rest bucket (lower bound of full KL), nats per position",
            "reference_topk_mass": float(np.exp(self.ref.topk_logp.astype(np.float64)).sum(-1).mean()),
        }


def _bucket_kl(p_top: np.ndarray, q_top: np.ndarray) -> np.ndarray:
    """KL(p || q) per row over the K given tokens plus a `rest` bucket, nats."""
    p_rest = np.maximum(1.0 - np.exp(p_top).sum(-1), _TINY)
    q_rest = np.maximum(1.0 - np.exp(q_top).sum(-1), _TINY)
    kl = (np.exp(p_top) * (p_top - q_top)).sum(-1) + p_rest * (np.log(p_rest) - np.log(q_rest))
    return np.maximum(kl, 0.0)  # float rounding can give -1e-17 for identical rows


def reference_key(reference_dir: Path, examples: list[dict], task: str) -> dict:
    """What a cached reference must match to be reused."""
    digest = hashlib.sha256(json.dumps([e["text"] for e in examples]).encode()).hexdigest()[:16]
    return {"reference_dir": str(Path(reference_dir).resolve()), "task": task, "examples": len(examples),
            "examples_sha256": digest, "top_k": TOP_K}


def load_or_build_reference(reference_dir: Path, examples: list[dict], task: str, cache: Path,
                            device: str = "cpu", threads: int | None = None) -> Reference:
    """The cached reference if it matches; otherwise run the base model once and cache it.

    A lock file serializes parallel benchmark tasks of one run, so the base model runs once.
    """
    key = reference_key(reference_dir, examples, task)
    cache = Path(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.with_name(cache.name + ".lock")):
        if cache.is_file():
            try:
                ref = Reference.load(cache)
                if ref.meta == key:
                    return ref
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale: rebuilt below
        ref = build_reference(reference_dir, examples, task, key, device, threads)
        ref.save(cache)
        return ref


def build_reference(reference_dir: Path, examples: list[dict], task: str, meta: dict, device: str = "cpu",
                    threads: int | None = None) -> Reference:
    """The base model's distributions, from the transformers runtime (the base is a Hugging Face checkpoint)."""
    from tasks import runtimes
    from tasks.measurement import accuracy

    runtime = runtimes.load(reference_dir, device, threads, runtime="transformers")
    try:
        collector = _Collector()
        acc = accuracy.task_accuracy(runtime, examples, task, observe=collector)
    finally:
        runtime.close()
    return collector.reference(meta, acc["correct"], device)
