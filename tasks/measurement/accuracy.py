"""Task accuracy (log-likelihood over the options) and perplexity on held-out text.

The shipped `sentiment` task is scored few-shot in plain text ("Review: ...
Sentiment: positive"), three labels. The few-shot prefix is the same for
every example, so the runtime keeps its KV state and reuses it: each example
then costs a forward pass over its own ~30 tokens, not the ~140 of the full
prompt. Both figures come from the variant's runtime (`Runtime.logits`), so a
GGUF or ONNX variant is judged as it will be served.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np

from tasks.errors import GreenlaneError
from tasks.runtimes.base import log_softmax

DATA = Path(str(resources.files("tasks") / "data"))
LABELS = ("positive", "negative", "neutral")


def load_split(task: str, split: str, limit: int | None = None) -> list[dict]:
    path = DATA / task / f"{split}.jsonl"
    if not path.is_file():
        shipped = sorted(p.name for p in DATA.iterdir() if (p / "eval.jsonl").is_file())
        raise GreenlaneError(f"no {split} split for task {task!r} ({path}); shipped tasks: {', '.join(shipped)}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def few_shot_prefix(task: str) -> str:
    """One solved training example per label (the first of each in the train split)."""
    train = load_split(task, "train")
    shots = [next(r for r in train if r["label"] == label) for label in LABELS]
    return "".join(format_example(s["text"]) + f" {s['label']}\n\n" for s in shots)


def format_example(text: str) -> str:
    """The text that precedes the answer word; the answer follows after a space."""
    return f"Review: {text}\nSentiment:"


def _option_ids(tokenizer) -> list[int]:
    ids = [tokenizer(f" {label}", add_special_tokens=False)["input_ids"] for label in LABELS]
    if any(len(i) != 1 for i in ids):
        raise GreenlaneError(f"task labels must be single tokens for this tokenizer, got {ids}")
    return [i[0] for i in ids]


def task_accuracy(runtime, examples: list[dict], task: str = "sentiment", observe=None) -> dict:
    """Accuracy with per-example correctness (kept for paired comparisons against the baseline).

    `observe(input_ids, logits)`, when given, sees each example's own token ids [T] and the
    logits at those positions [T, vocab] (numpy; the fidelity comparison reuses this forward pass).
    """
    tokenizer = runtime.tokenizer
    option_ids = _option_ids(tokenizer)
    prefix = tokenizer(few_shot_prefix(task))["input_ids"]
    correct = []
    for ex in examples:
        ids = tokenizer(format_example(ex["text"]), add_special_tokens=False)["input_ids"]
        logits = runtime.logits(ids, prefix=prefix)
        if observe is not None:
            observe(np.asarray(ids, dtype=np.int64), logits)
        scores = logits[-1, option_ids]
        correct.append(int(LABELS[int(scores.argmax())] == ex["label"]))
    return {"accuracy": sum(correct) / len(correct), "accuracy_n": len(correct), "correct": correct}


def perplexity(runtime, text: str, max_tokens: int) -> dict:
    """exp(mean next-token negative log-likelihood) over the first `max_tokens` tokens."""
    ids = runtime.tokenizer(text)["input_ids"][:max_tokens]
    logits = runtime.logits(ids)
    nll = -sum(token_logprobs(logits[:-1], ids[1:]))
    return {"perplexity": math.exp(nll / (len(ids) - 1)), "perplexity_tokens": len(ids)}


def token_logprobs(logits: np.ndarray, targets: list[int], chunk: int = 128) -> list[float]:
    """log p(targets[i]) under row i of `logits`, in chunks of rows (a full [T, vocab] float64 copy of a
    1k-token text would take 400 MB)."""
    out: list[float] = []
    for start in range(0, len(targets), chunk):
        rows = log_softmax(logits[start:start + chunk])
        out.extend(rows[np.arange(len(rows)), targets[start:start + chunk]].tolist())
    return out


def heldout_text() -> str:
    return (DATA / "heldout.txt").read_text()
