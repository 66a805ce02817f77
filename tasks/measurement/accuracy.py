"""Task accuracy (log-likelihood over the options) and perplexity on held-out text.

The shipped `sentiment` task is scored few-shot in plain text ("Review: ...
Sentiment: positive"), three labels. The few-shot prefix is the same for
every example, so its KV cache is computed once and reused: each example then
costs a forward pass over its own ~30 tokens, not the ~140 of the full prompt.
"""

from __future__ import annotations

import copy
import json
import math
from importlib import resources
from pathlib import Path

from tasks.errors import GreenlaneError

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


def task_accuracy(model, tokenizer, examples: list[dict], task: str = "sentiment", observe=None) -> dict:
    """Accuracy with per-example correctness (kept for paired comparisons against the baseline).

    `observe(input_ids, logits)`, when given, sees each example's own token ids [T] and the
    logits at those positions [T, vocab] (the fidelity comparison reuses this forward pass).
    """
    import torch

    option_ids = _option_ids(tokenizer)
    prefix = tokenizer(few_shot_prefix(task), return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        prefix_cache = model(input_ids=prefix, use_cache=True).past_key_values
    correct = []
    for ex in examples:
        ids = tokenizer(format_example(ex["text"]), add_special_tokens=False, return_tensors="pt")["input_ids"]
        mask = torch.ones(1, prefix.shape[1] + ids.shape[1], dtype=torch.long)
        with torch.inference_mode():
            # The cache object is extended in place by a forward pass, so each example gets a copy.
            out = model(input_ids=ids, attention_mask=mask, past_key_values=copy.deepcopy(prefix_cache), use_cache=True)
        if observe is not None:
            observe(ids[0], out.logits[0])
        scores = out.logits[0, -1, option_ids]
        correct.append(int(LABELS[int(scores.argmax())] == ex["label"]))
    return {"accuracy": sum(correct) / len(correct), "accuracy_n": len(correct), "correct": correct}


def perplexity(model, tokenizer, text: str, max_tokens: int) -> dict:
    """exp(mean next-token negative log-likelihood) over the first `max_tokens` tokens."""
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :max_tokens]
    with torch.inference_mode():
        loss = model(input_ids=ids, labels=ids).loss.float()
    return {"perplexity": math.exp(float(loss)), "perplexity_tokens": int(ids.shape[1])}


def heldout_text() -> str:
    return (DATA / "heldout.txt").read_text()
