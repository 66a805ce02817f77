"""Task accuracy through a runtime: each option's log-likelihood after the few-shot prefix, checked against a
plain full-sequence forward pass of the same model (no KV reuse, no shortcuts)."""

import json

import numpy as np
import pytest

from tasks import evaltasks, runtimes
from tasks.measurement import accuracy


def reference_choices(model_dir, task, examples, per_char=False) -> list[int]:
    """The option with the highest summed log-probability, from one whole forward pass per option."""
    import torch

    from tasks.models import load_model

    model, tok = load_model(model_dir)
    prefix = tok(task.few_shot_prefix())["input_ids"]
    picked = []
    for ex in examples:
        ids = prefix + tok(task.prompt(ex), add_special_tokens=False)["input_ids"]
        scores = []
        for option in task.options(ex):
            opt = tok(f" {option}", add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids + opt])).logits[0].double(), dim=-1)
            total = sum(float(logp[len(ids) - 1 + k, t]) for k, t in enumerate(opt))
            scores.append(total / len(option) if per_char else total)
        picked.append(int(np.argmax(scores)))
    return picked


@pytest.mark.parametrize("name", ["sentiment", "capitals", "capitals_mc"])
def test_accuracy_picks_the_most_likely_option_of_each_shipped_task(tiny_dir, name):
    task = evaltasks.get(name)
    examples = task.rows("eval", 12)
    result = accuracy.task_accuracy(runtimes.load(tiny_dir), examples, name)
    expected = [int(c == task.answer_index(ex)) for c, ex in zip(reference_choices(tiny_dir, task, examples), examples)]
    assert result["correct"] == expected
    assert result["accuracy"] == sum(expected) / 12 and result["accuracy_n"] == 12


def test_multi_token_options_and_acc_norm_from_a_users_task(tiny_dir, tmp_path):
    rows = [{"q": "Which is a fruit?", "choices": ["apple", "a concrete mixer truck"], "answer": 0},
            {"q": "Which city is in France?", "choices": ["Lyon", "Addis Ababa", "Kuala Lumpur"], "answer": 0}] * 3
    for split in ("train", "eval"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "quiz.yaml").write_text("kind: multiple_choice\ntrain: train.jsonl\neval: eval.jsonl\n"
                                        "template: \"Q: {q}\\nA:\"\nfew_shot: 1\nmetric: acc_norm\n")
    task = evaltasks.get(str(tmp_path / "quiz.yaml"))
    result = accuracy.task_accuracy(runtimes.load(tiny_dir), task.rows("eval"), task)
    expected = reference_choices(tiny_dir, task, task.rows("eval"), per_char=True)
    assert result["correct"] == [int(c == 0) for c in expected]


def test_observe_sees_each_examples_own_tokens_once(tiny_dir):
    seen = []
    examples = evaltasks.get("capitals_mc").rows("eval", 3)
    accuracy.task_accuracy(runtimes.load(tiny_dir), examples, "capitals_mc", observe=lambda ids, logits: seen.append(
        (len(ids), logits.shape[0])))
    assert len(seen) == 3 and all(n == rows for n, rows in seen)  # the fidelity figures see no option tokens


def test_batched_logits_are_each_sequences_own(tiny_dir):
    """The accuracy pass scores BATCH examples per forward pass in transformers (right-padded, the prefix's KV
    state repeated): each row must be what that sequence alone gives."""
    rt = runtimes.load(tiny_dir)
    prefix = rt.tokenizer("Review: fine.\nSentiment: positive\n\n")["input_ids"]
    batch = [rt.tokenizer(t, add_special_tokens=False)["input_ids"]
             for t in ("Review: awful.\nSentiment:", "Review: a long, slow and rather dull film.\nSentiment:", "Hi")]
    assert len({len(ids) for ids in batch}) == 3  # three lengths: the padding is exercised
    together = rt.logits_many(batch, prefix=prefix)
    for ids, rows in zip(batch, together):
        np.testing.assert_allclose(rows, rt.logits(ids, prefix=prefix), atol=1e-4)
    assert accuracy.BATCH > 1
