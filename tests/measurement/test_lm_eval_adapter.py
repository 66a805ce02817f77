"""lm-evaluation-harness tasks from local task files, on the tiny model; their config fields' validation.

The harness is in the `test` extra, so these run in CI; the offline default never imports it.
"""

from __future__ import annotations

import sys

import pytest

from tasks.config import load_config
from tasks.errors import GreenlaneError
from tasks.measurement.accuracy import DATA

EXAMPLE = DATA / "lm_eval"  # the shipped example: sentiment eval split as 3-way multiple choice


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    from tasks.models import load_model

    return load_model(tiny_dir)


def test_shipped_example_task_scores_limit_examples(tiny):
    from tasks.measurement.lm_eval_adapter import run_lm_eval
    from tasks.tracking.runs import metrics_of

    figures = run_lm_eval(*tiny, ["sentiment_mc"], EXAMPLE, limit=4, batch_size=4)
    assert 0.0 <= figures["lm_eval/sentiment_mc/acc"] <= 1.0
    assert 0.0 <= figures["lm_eval/sentiment_mc/acc_norm"] <= 1.0
    assert figures["lm_eval/sentiment_mc/n"] == 4
    assert all(isinstance(v, (int, float)) for v in figures.values())
    assert set(figures) <= set(metrics_of(figures))  # the lm_eval/ family is logged to MLflow


def test_user_task_folder_reads_relative_data_files_and_names_unknown_tasks(tiny, tmp_path):
    from tasks.measurement.lm_eval_adapter import run_lm_eval

    # A boolq-style task a user would write: yes/no over a local jsonl next to the YAML.
    (tmp_path / "data").mkdir()
    rows = ['{"passage": "The sky is blue.", "question": "is the sky blue", "answer": true}',
            '{"passage": "Fire is cold.", "question": "is fire hot", "answer": true}',
            '{"passage": "Ice is hot.", "question": "is ice hot", "answer": false}']
    (tmp_path / "data" / "dev.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "mini_boolq.yaml").write_text(
        "task: mini_boolq\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    validation: data/dev.jsonl\n"
        "output_type: multiple_choice\nvalidation_split: validation\n"
        "doc_to_text: \"{{passage}}\\nQuestion: {{question}}?\\nAnswer:\"\n"
        "doc_to_choice: [\"no\", \"yes\"]\ndoc_to_target: \"{{answer | int}}\"\n"
        "metric_list:\n  - metric: acc\n"
    )
    figures = run_lm_eval(*tiny, ["mini_boolq"], tmp_path, limit=2, batch_size=2)
    assert 0.0 <= figures["lm_eval/mini_boolq/acc"] <= 1.0 and figures["lm_eval/mini_boolq/n"] == 2

    with pytest.raises(GreenlaneError, match=r"boolq not defined by a YAML in .*; defined there: mini_boolq"):
        run_lm_eval(*tiny, ["boolq"], tmp_path, limit=2)
    (tmp_path / "data" / "dev.jsonl").unlink()
    with pytest.raises(GreenlaneError, match="lm-eval task data not found"):
        run_lm_eval(*tiny, ["mini_boolq"], tmp_path, limit=2)


def test_missing_harness_says_how_to_install(monkeypatch):
    from tasks.measurement.lm_eval_adapter import run_lm_eval

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now raises ImportError
    with pytest.raises(GreenlaneError, match=r"pip install 'greenlane\[lmeval\]'"):
        run_lm_eval(None, None, ["sentiment_mc"], EXAMPLE)


def test_config_defaults_to_no_harness_and_resolves_the_folder():
    cfg = load_config(None)
    assert cfg.eval.lm_eval_tasks == [] and cfg.eval.lm_eval_include_path is None
    cfg = load_config(None, ["eval.lm_eval_tasks=[sentiment_mc]", f"eval.lm_eval_include_path={EXAMPLE}",
                             "eval.lm_eval_limit=5"])
    assert cfg.eval.lm_eval_include_path == str(EXAMPLE.resolve()) and cfg.eval.lm_eval_limit == 5


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["eval.lm_eval_tasks=[sentiment_mc]"], r"eval: lm_eval_tasks \['sentiment_mc'\] need lm_eval_include_path"),
        (["eval.lm_eval_include_path=/no/such/folder"], "eval.lm_eval_include_path: lm-eval task folder not found: /no/such/folder"),
        (["eval.lm_eval_limit=0"], "eval.lm_eval_limit"),
    ],
)
def test_bad_lm_eval_config_fails_at_load_naming_the_field(overrides, message):
    with pytest.raises(GreenlaneError, match=message):
        load_config(None, overrides)


def test_config_without_the_harness_installed_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    with pytest.raises(GreenlaneError, match=r"eval: lm_eval_tasks need lm-evaluation-harness.*greenlane\[lmeval\]"):
        load_config(None, ["eval.lm_eval_tasks=[sentiment_mc]", f"eval.lm_eval_include_path={EXAMPLE}"])
