"""Evaluation tasks, one YAML each: data, prompt template, labels or choices, metric (see task.py).

A shipped task's YAML lives beside its data (tasks/data/<folder>/<task>.yaml), so it is package data and
part of the data version the retrain workflow hashes, and it reads exactly like a user's own task.

`eval.task` names a shipped task from `TASKS`, or is the path of a task YAML of the user's own
(a classification or multiple-choice task over JSONL files; no code to write). Accuracy
(`tasks.measurement.accuracy`) and the training methods (`tasks.compression._train`) both read the
task through `get`, so the variant is trained and judged on one definition.

Adding a shipped task is its YAML and data under tasks/data/<folder>/ and one line in `TASKS`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tasks.errors import GreenlaneError
from tasks.evaltasks.task import EvalTask, TaskSpec, load_task

__all__ = ["DATA", "DEFAULT_TASK", "TASKS", "EvalTask", "TaskSpec", "get", "resolve"]

DATA = Path(str(resources.files("tasks") / "data"))  # shipped task data, held-out text, prompts
DEFAULT_TASK = "sentiment"

TASKS = {  # name -> its YAML under DATA
    "sentiment": "sentiment/sentiment.yaml",  # product reviews: positive / negative / neutral
    "capitals": "capitals/capitals.yaml",  # "Is Lima the capital of Peru?": yes / no
    "capitals_mc": "capitals/capitals_mc.yaml",  # "What is the capital of Peru?": four cities
}

_loaded: dict[str, tuple[float, EvalTask]] = {}


def get(task: str | EvalTask) -> EvalTask:
    """The task `eval.task` names: a shipped name, or a path to a task YAML. An EvalTask passes through."""
    if isinstance(task, EvalTask):
        return task
    path = _path(task)
    mtime = path.stat().st_mtime
    cached = _loaded.get(str(path))
    if cached is None or cached[0] != mtime:  # re-read a user's YAML that changed
        cached = (mtime, load_task(path, source=task))
        _loaded[str(path)] = cached
    return cached[1]


def resolve(task: str, read_data: bool = True) -> str:
    """What the config stores for `eval.task`: the shipped name, or the YAML's absolute path. With `read_data`
    the task and both splits are read and checked here, so a bad task fails when the config loads."""
    path = _path(task)
    if read_data:
        loaded = get(task)
        loaded.rows("train")
        loaded.rows("eval")
        loaded.few_shot_prefix()
    return task if task in TASKS else str(path)


def _path(task: str) -> Path:
    if task in TASKS:
        return DATA / TASKS[task]
    if task.endswith((".yaml", ".yml")):
        path = Path(task).expanduser().resolve()
        if not path.is_file():
            raise GreenlaneError(f"task file not found: {path}")
        return path
    raise GreenlaneError(f"unknown task {task!r}; shipped tasks: {', '.join(TASKS)}, "
                         "or the path of a task YAML of your own (see the README's \"Your own eval task\")")
