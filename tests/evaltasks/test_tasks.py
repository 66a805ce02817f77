"""Eval tasks as plug-ins: the shipped tasks, a user's task from a YAML + JSONL, and one-line errors for bad ones."""

import json
import re
from pathlib import Path

import pytest

from tasks import evaltasks
from tasks.config import load_config
from tasks.errors import GreenlaneError


def write_task(folder: Path, spec: str, train: list[dict], evals: list[dict]) -> Path:
    """A task as a user writes one: a YAML beside its two JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("eval.jsonl", evals)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "task.yaml").write_text(spec)
    return folder / "task.yaml"


YES_NO = """\
name: is_even
kind: classification
train: train.jsonl
eval: eval.jsonl
template: "Is {n} an even number?\\nAnswer:"
labels: ["yes", "no"]
"""
NUMBERS = [{"n": n, "label": "yes" if n % 2 == 0 else "no"} for n in range(10)]
CHOICE = """\
kind: multiple_choice
train: train.jsonl
eval: eval.jsonl
template: "Q: {question}\\nA:"
few_shot: 1
metric: acc_norm
"""
QUESTIONS = [
    {"question": "What colour is the sky on a clear day?", "choices": ["blue", "bright green"], "answer": 0},
    {"question": "How many legs does a spider have?", "choices": ["six", "eight", "ten"], "answer": "eight"},
]


@pytest.mark.parametrize("name", list(evaltasks.TASKS))
def test_every_shipped_task_loads_and_its_splits_are_disjoint(name):
    task = evaltasks.get(name)
    assert evaltasks.resolve(name) == name and task.name == name
    train, evals = task.rows("train"), task.rows("eval")
    assert len(train) >= 40 and len(evals) >= 40
    assert not {task.prompt(r) for r in train} & {task.prompt(r) for r in evals}  # nothing evaluated was trained on
    assert task.few_shot_prefix().endswith("\n\n")


def test_the_second_shipped_task_has_other_labels_and_balanced_answers():
    sentiment, capitals = evaltasks.get("sentiment"), evaltasks.get("capitals")
    assert capitals.spec.labels == ["yes", "no"] and not set(capitals.spec.labels) & set(sentiment.spec.labels)
    answers = [capitals.answer(r) for r in capitals.rows("eval")]
    assert answers.count("yes") == answers.count("no")
    row = capitals.rows("eval")[0]
    assert capitals.solved(row) == f"Question: {row['question']}\nAnswer: {row['label']}"


def test_the_sentiment_prompt_and_few_shot_prefix_are_as_before():
    """The shipped task reproduces the prompt the sentiment figures were measured with (one shot per label)."""
    task = evaltasks.get("sentiment")
    train = task.rows("train")
    shots = [next(r for r in train if r["label"] == label) for label in ("positive", "negative", "neutral")]
    assert task.few_shot_prefix() == "".join(f"Review: {s['text']}\nSentiment: {s['label']}\n\n" for s in shots)
    assert task.prompt({"text": "Fine."}) == "Review: Fine.\nSentiment:"


def test_a_classification_task_from_a_jsonl_file_is_selected_by_its_path(tmp_path, monkeypatch):
    write_task(tmp_path / "mine", YES_NO, NUMBERS[:6], NUMBERS[6:])
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["eval.task=mine/task.yaml"])
    assert cfg.eval.task == str(tmp_path / "mine" / "task.yaml")  # stored absolute: workers read the same file
    task = evaltasks.get(cfg.eval.task)
    assert task.name == "is_even" and [task.answer(r) for r in task.rows("eval")] == ["yes", "no", "yes", "no"]
    assert task.few_shot_prefix() == "Is 0 an even number?\nAnswer: yes\n\nIs 1 an even number?\nAnswer: no\n\n"


def test_a_multiple_choice_task_from_a_jsonl_file(tmp_path):
    path = write_task(tmp_path / "quiz", CHOICE, QUESTIONS, QUESTIONS)
    task = evaltasks.get(str(path))
    assert task.name == "task" and task.kind == "multiple_choice" and task.metric == "acc_norm"
    assert [task.answer_index(r) for r in task.rows("eval")] == [0, 1]  # an index or the choice's text
    assert task.options(QUESTIONS[1]) == ["six", "eight", "ten"]
    assert task.few_shot_prefix() == "Q: What colour is the sky on a clear day?\nA: blue\n\n"


@pytest.mark.parametrize("row, problem", [
    ({"n": 3, "label": "maybe"}, r"label 'maybe' is not one of the task's labels: yes, no"),
    ({"number": 3, "label": "no"}, r"no field 'n'"),
])
def test_a_bad_row_fails_at_config_load_in_one_line_naming_file_and_line(tmp_path, row, problem):
    path = write_task(tmp_path / "bad", YES_NO, NUMBERS[:2] + [row], NUMBERS)
    with pytest.raises(GreenlaneError) as err:
        load_config(None, [f"eval.task={path}"])
    message = str(err.value)
    assert "\n" not in message
    assert f"eval.task: {tmp_path / 'bad' / 'train.jsonl'}:3: " in message
    assert re.search(problem, message)


@pytest.mark.parametrize("row, problem", [
    ({"question": "q", "choices": ["a", "b"], "answer": 2}, "answer index 2 is out of range for 2 choices"),
    ({"question": "q", "choices": ["a", "b"], "answer": "c"}, "answer 'c' is not one of the row's choices: a, b"),
    ({"question": "q", "choices": ["a"], "answer": 0}, "field 'choices' must be a list of at least two"),
])
def test_a_bad_multiple_choice_row_names_the_problem(tmp_path, row, problem):
    path = write_task(tmp_path / "bad", CHOICE, QUESTIONS, QUESTIONS + [row])
    with pytest.raises(GreenlaneError, match=rf"eval\.jsonl:3: {problem}"):
        evaltasks.resolve(str(path))


def test_an_unknown_eval_task_fails_at_load_listing_the_shipped_ones():
    with pytest.raises(GreenlaneError, match=r"eval\.task: unknown task 'sentimnet'; shipped tasks: sentiment, "
                                             r"capitals, capitals_mc, or the path of a task YAML"):
        load_config(None, ["eval.task=sentimnet"])
    with pytest.raises(GreenlaneError, match=r"eval\.task: task file not found: .*no/such\.yaml"):
        load_config(None, ["eval.task=no/such.yaml"])


@pytest.mark.parametrize("spec, problem", [
    (YES_NO.replace('labels: ["yes", "no"]\n', ""), "a classification task needs `labels`"),
    (YES_NO.replace("{n}", "n"), "template .* names no row field"),
    (YES_NO + "few_shot: -1\n", "few_shot must be >= 0"),
    (YES_NO + "colour: red\n", "colour: Extra inputs are not permitted"),
])
def test_a_bad_task_yaml_fails_naming_the_field(tmp_path, spec, problem):
    path = write_task(tmp_path / "t", spec, NUMBERS, NUMBERS)
    with pytest.raises(GreenlaneError, match=rf"task file {path}: .*{problem}"):
        evaltasks.get(str(path))


def test_a_label_missing_from_train_is_a_clear_error_not_a_stop_iteration(tmp_path):
    evens = [r for r in NUMBERS if r["label"] == "yes"]
    path = write_task(tmp_path / "t", YES_NO, evens, NUMBERS)
    with pytest.raises(GreenlaneError, match=r"train\.jsonl: no row with label 'no', needed for the few-shot prefix"):
        evaltasks.resolve(str(path))


def test_the_readme_example_task_loads(tmp_path, monkeypatch):
    """The README's "Your own task" shell lines, run as written (all but the `greenlane run` line)."""
    import subprocess

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme[readme.index("mkdir -p mytask"):]
    script = block[:block.index("greenlane run --set eval.task=mytask/task.yaml")]
    subprocess.run(["bash", "-euc", script], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["eval.task=mytask/task.yaml"])
    task = evaltasks.get(cfg.eval.task)
    assert task.name == "is_even" and [task.answer(r) for r in task.rows("eval")] == ["no", "yes", "no"]
