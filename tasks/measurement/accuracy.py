"""Task accuracy (log-likelihood over each example's options) and perplexity on held-out text.

The task (`tasks.evaltasks`: data, prompt template, labels or choices, metric) is scored few-shot
in plain text; for the shipped `sentiment` task "Review: ...\nSentiment: positive", three labels.
The few-shot prefix is the same for every example, so the runtime keeps its KV state and reuses
it: each example then costs a forward pass over its own ~30 tokens, not the ~140 of the full
prompt. Both figures come from the variant's runtime (`Runtime.logits`), so a GGUF or ONNX
variant is judged as it will be served.
"""

from __future__ import annotations

import math

import numpy as np

from tasks.evaltasks import DATA, DEFAULT_TASK, EvalTask, get
from tasks.runtimes.base import log_softmax

# Examples per forward pass in a runtime that scores several at once (`logits_many`: transformers); their
# logits are [BATCH, tokens, vocab] float32 at once, ~80 MB for SmolLM2's 49k vocabulary and 50 tokens.
BATCH = 8

__all__ = ["DATA", "load_split", "few_shot_prefix", "task_accuracy", "perplexity", "token_logprobs", "heldout_text"]


def load_split(task: str | EvalTask, split: str, limit: int | None = None) -> list[dict]:
    """The first `limit` rows of the task's `train` or `eval` split (all when None)."""
    return get(task).rows(split, limit)


def few_shot_prefix(task: str | EvalTask = DEFAULT_TASK) -> str:
    return get(task).few_shot_prefix()


def task_accuracy(runtime, examples: list[dict], task: str | EvalTask = DEFAULT_TASK, observe=None) -> dict:
    """Accuracy with per-example correctness (kept for paired comparisons against the baseline).

    `observe(input_ids, logits)`, when given, sees each example's own token ids [T] and the
    logits at those positions [T, vocab] (numpy; the fidelity comparison reuses this forward pass).
    """
    task = get(task)
    tokenizer = runtime.tokenizer
    prefix = tokenizer(task.few_shot_prefix())["input_ids"]
    option_cache: dict[tuple[str, ...], list[list[int]]] = {}
    correct = []
    encoded = [(ex, tokenizer(task.prompt(ex), add_special_tokens=False)["input_ids"]) for ex in examples]
    many = getattr(runtime, "logits_many", None)  # a runtime that batches scores BATCH examples per pass
    step = BATCH if callable(many) else 1
    for start in range(0, len(encoded), step):
        chunk = encoded[start:start + step]
        rows = many([ids for _, ids in chunk], prefix=prefix) if step > 1 else [runtime.logits(chunk[0][1], prefix=prefix)]
        for (ex, ids), logits in zip(chunk, rows):
            options = tuple(task.options(ex))
            if options not in option_cache:
                option_cache[options] = [tokenizer(f" {o}", add_special_tokens=False)["input_ids"] for o in options]
            scores = _option_scores(runtime, prefix, ids, logits, option_cache[options], options, task.metric, observe)
            correct.append(int(int(np.argmax(scores)) == task.answer_index(ex)))
    return {"accuracy": sum(correct) / len(correct), "accuracy_n": len(correct), "correct": correct}


def _option_scores(runtime, prefix, ids, logits, option_ids, options, metric, observe) -> list[float]:
    """One score per option: its log-likelihood after the example (per character for `acc_norm`); `logits` are
    the example's own rows."""
    if observe is not None:
        observe(np.asarray(ids, dtype=np.int64), logits)
    if metric == "acc" and all(len(o) == 1 for o in option_ids):
        # One token each: compare the last row's logits, no second pass (log-softmax would not change the order).
        return logits[-1, [o[0] for o in option_ids]].tolist()
    first = log_softmax(logits[-1:])[0]
    scores = []
    for opt, text in zip(option_ids, options):
        total = float(first[opt[0]])
        if len(opt) > 1:  # the option's later tokens, read after the example and the option's earlier ones
            rows = runtime.logits(ids + opt[:-1], prefix=prefix)[len(ids):]
            total += sum(token_logprobs(rows, opt[1:]))
        scores.append(total / len(text) if metric == "acc_norm" else total)
    return scores

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
