"""The training and calibrating methods learn from the run's eval task, the same object accuracy reads."""

import ast
from pathlib import Path

import pytest

from tasks import evaltasks
from tasks.compression import METHODS, _train, method_module

COMPRESSION = Path(_train.__file__).parent
FAST = {
    "lora": {"steps": 1, "batch_size": 2},
    "distill": {"steps": 1, "batch_size": 2, "calibration_samples": 4, "chat_samples": 2},
    "prune": {"ratio": 0.25, "calibration_samples": 4},
}


def test_task_rows_are_the_tasks_prompts_with_the_loss_on_the_answer_only(smol_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_dir)
    task = evaltasks.get("capitals_mc")
    rows = _train.task_rows(tok, 96, task)
    assert len(rows) == len(task.rows("train"))
    ids, labels = rows[0]
    first = task.rows("train")[0]
    assert tok.decode(ids) == task.solved(first)
    answer = [t for t in labels if t != _train.IGNORE]
    assert tok.decode(answer) == f" {task.answer(first)}" and len(answer) == len(labels) - labels.count(_train.IGNORE)


def test_calibration_text_is_written_as_the_task_writes_it(smol_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_dir)
    chunks = _train.calibration_batches(tok, 3, task="capitals")
    text = tok.decode(chunks[0][0])
    assert text.startswith("Question: Is ") and ("\nAnswer: yes" in text or "\nAnswer: no" in text)


@pytest.mark.parametrize("method", sorted(FAST))
def test_each_training_method_receives_the_runs_task(tiny4_dir, build, monkeypatch, method):
    """Built through build_variant with task=capitals: the method's data comes from that task, and the step
    records it."""
    seen = []
    for name in ("task_rows", "calibration_batches", "chat_rows"):
        original = getattr(_train, name)

        def spy(*args, _original=original, **kwargs):
            seen.append(kwargs.get("task", args[2] if len(args) > 2 else "no task passed"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(_train, name, spy)
    chain = [{"method": method, **FAST[method]}] if method != "prune" else [
        {"method": "prune", "layer_ratio": 0.25, **FAST["prune"]}]
    _, meta = build(tiny4_dir, chain, task="capitals")
    assert seen and set(seen) == {"capitals"}
    assert meta["chain"][0]["task"] == "capitals"


def test_only_methods_that_declare_it_take_a_task():
    takes = {name for name in METHODS if getattr(method_module(name), "USES_TASK", False)}
    assert takes == {"lora", "distill", "prune"}


def test_compression_never_imports_measurement():
    """Training data comes from tasks.evaltasks; compression does not depend on how variants are measured."""
    for path in COMPRESSION.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("tasks.measurement"), f"{path.name} imports {node.module}"
