"""One evaluation task: its data, prompt template, answer options and metric, read from one YAML file.

A task is either
- `classification`: every row has a label from a fixed list (`labels`), e.g. sentiment or yes/no; or
- `multiple_choice`: every row brings its own options (`choices_field`) and the index or text of the
  right one (`answer_field`).

Either way an example is scored the same way: the prompt is `template` filled with the row's fields,
each option follows it after one space, and the option with the highest log-likelihood is the
answer (`acc`; `acc_norm` divides by the option's length in characters, as lm-evaluation-harness does).
Training methods read the same rows, written the same way, from the train split.

Paths in the YAML are relative to the YAML's own folder. Every row is checked when a split is read:
a row the task cannot use fails with one line naming the file and line.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.errors import GreenlaneError

SHOT_SEPARATOR = "\n\n"  # between solved few-shot examples, and before the example scored
GENERIC_CHAT = (
    "Summarize this text in one sentence.",
    "Explain this to a friend in two short sentences.",
    "What is this text about?",
)


class TaskSpec(BaseModel):
    """The fields of a task YAML (see the README's "Your own eval task")."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Task name, as it appears in run records."""
    kind: Literal["classification", "multiple_choice"]
    """`classification` (fixed `labels`) or `multiple_choice` (options per row)."""
    train: str
    """JSONL file of training rows (relative to this YAML): few-shot examples and what training methods learn."""
    eval: str
    """JSONL file of evaluation rows (relative to this YAML); never seen by training."""
    template: str = Field(min_length=1)
    """Text before the answer, Python `str.format` over the row's fields, e.g. "Review: {text}\\nSentiment:"."""
    labels: list[str] | None = None
    """classification: the allowed answers, in a fixed order; each follows the prompt after a space."""
    answer_field: str | None = None
    """The row field with the right answer: a label (classification, default `label`), or the index from 0
    or the text of the right choice (multiple_choice, default `answer`)."""
    choices_field: str = "choices"
    """multiple_choice: the row field with the list of options."""
    few_shot: int | Literal["per_label"] | None = Field(None)
    """Solved train rows put before every example: `per_label` (the first train row of each label, the
    classification default) or a count (the first N train rows; multiple_choice default 0)."""
    metric: Literal["acc", "acc_norm"] = "acc"
    """`acc`: highest summed log-likelihood; `acc_norm`: highest log-likelihood per character of the option."""
    text_field: str | None = None
    """Field quoted in the chat rows that distillation writes (default: the template's first field)."""
    chat_instructions: list[str] = list(GENERIC_CHAT)
    """Instructions the teacher answers about `text_field` of train rows, for distillation's chat rows."""

    @model_validator(mode="after")
    def _consistent(self) -> "TaskSpec":
        fields = template_fields(self.template)
        if not fields:
            raise ValueError(f"template {self.template!r} names no row field, e.g. {{text}}")
        if self.kind == "classification":
            if not self.labels or len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
                raise ValueError("a classification task needs `labels`, at least two distinct answers")
        elif self.labels is not None:
            raise ValueError("`labels` is for classification; a multiple_choice row brings its own options")
        if self.kind == "multiple_choice" and self.few_shot == "per_label":
            raise ValueError("few_shot: per_label needs labels; give a count for a multiple_choice task")
        if isinstance(self.few_shot, int) and self.few_shot < 0:
            raise ValueError(f"few_shot must be >= 0, got {self.few_shot}")
        return self


class EvalTask:
    """A loaded, checked task: rows of its splits and how each one is written."""

    def __init__(self, spec: TaskSpec, folder: Path, source: str):
        self.spec = spec
        self.name = spec.name
        self.source = source  # the registry name or the YAML path: what `eval.task` said
        self.folder = folder
        self.kind = spec.kind
        self.metric = spec.metric
        self.answer_field = spec.answer_field or ("label" if spec.kind == "classification" else "answer")
        self._fields = template_fields(spec.template)
        self.text_field = spec.text_field or self._fields[0]
        self._splits: dict[str, list[dict]] = {}

    def __repr__(self) -> str:
        return f"EvalTask({self.name!r}, {self.kind}, from {self.source})"

    def path(self, split: str) -> Path:
        if split not in ("train", "eval"):
            raise GreenlaneError(f"task {self.name}: no split {split!r} (train, eval)")
        return (self.folder / getattr(self.spec, split)).resolve()

    def rows(self, split: str, limit: int | None = None) -> list[dict]:
        """The split's rows in file order (the first `limit`), each checked (`check_row`)."""
        if split not in self._splits:
            self._splits[split] = self._read(self.path(split))
        rows = self._splits[split]
        return rows[:limit] if limit else rows

    def prompt(self, row: dict) -> str:
        """The text that precedes the answer; the answer follows after a space."""
        return self.spec.template.format(**row)

    def options(self, row: dict) -> list[str]:
        return list(self.spec.labels) if self.kind == "classification" else list(row[self.spec.choices_field])

    def answer_index(self, row: dict) -> int:
        answer = row[self.answer_field]
        return answer if isinstance(answer, int) else self.options(row).index(answer)

    def answer(self, row: dict) -> str:
        return self.options(row)[self.answer_index(row)]

    def solved(self, row: dict) -> str:
        """A row written with its answer, as in the few-shot prefix and the training rows."""
        return f"{self.prompt(row)} {self.answer(row)}"

    def few_shot_prefix(self) -> str:
        """Solved train rows put before every scored example (`few_shot`)."""
        train = self.rows("train")
        shots_spec = self.spec.few_shot
        if shots_spec is None:
            shots_spec = "per_label" if self.kind == "classification" else 0
        if shots_spec == "per_label":
            shots = []
            for label in self.spec.labels:
                row = next((r for r in train if r[self.answer_field] == label), None)
                if row is None:
                    raise GreenlaneError(f"{self.path('train')}: no row with label {label!r}, needed for the "
                                         "few-shot prefix (few_shot: per_label); add one or set few_shot to a count")
                shots.append(row)
        else:
            shots = train[:shots_spec]
        return "".join(self.solved(s) + SHOT_SEPARATOR for s in shots)

    def _read(self, path: Path) -> list[dict]:
        if not path.is_file():
            raise GreenlaneError(f"task {self.name}: data file not found: {path}")
        rows = []
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise GreenlaneError(f"{path}:{lineno}: not a JSON object ({err.msg})") from None
            problem = self.check_row(row)
            if problem:
                raise GreenlaneError(f"{path}:{lineno}: {problem}")
            rows.append(row)
        if not rows:
            raise GreenlaneError(f"{path}: no rows")
        return rows

    def check_row(self, row) -> str | None:
        """What is wrong with `row` for this task, or None."""
        if not isinstance(row, dict):
            return f"a row must be a JSON object, got {type(row).__name__}"
        missing = [f for f in [*self._fields, self.answer_field] if f not in row]
        if missing:
            return f"no field {', '.join(map(repr, missing))} (the task reads {', '.join([*self._fields, self.answer_field])})"
        answer = row[self.answer_field]
        if self.kind == "classification":
            if answer not in self.spec.labels:
                return f"label {answer!r} is not one of the task's labels: {', '.join(self.spec.labels)}"
            return None
        choices = row.get(self.spec.choices_field)
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            return f"field {self.spec.choices_field!r} must be a list of at least two non-empty strings"
        if isinstance(answer, bool) or not isinstance(answer, (int, str)):
            return f"answer {answer!r} must be a choice's index from 0 or its text"
        if isinstance(answer, int) and not 0 <= answer < len(choices):
            return f"answer index {answer} is out of range for {len(choices)} choices"
        if isinstance(answer, str) and answer not in choices:
            return f"answer {answer!r} is not one of the row's choices: {', '.join(choices)}"
        return None


def template_fields(template: str) -> list[str]:
    """The row fields a template names, in order ("Review: {text}" -> ["text"])."""
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    except ValueError as err:
        raise ValueError(f"template {template!r} is not a valid format string: {err}") from None
    return list(dict.fromkeys(n.split(".")[0].split("[")[0] for n in names))


def load_task(path: Path, source: str | None = None) -> EvalTask:
    """Read and check a task YAML (not its data: `rows` reads and checks a split when first asked)."""
    path = Path(path)
    if not path.is_file():
        raise GreenlaneError(f"task file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise GreenlaneError(f"task file {path} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise GreenlaneError(f"task file {path} must be a mapping of task fields")
    raw.setdefault("name", path.stem)
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise GreenlaneError(f"task file {path}: {field}: {first['msg'].removeprefix('Value error, ')}") from None
    return EvalTask(spec, path.resolve().parent, source or str(path))
