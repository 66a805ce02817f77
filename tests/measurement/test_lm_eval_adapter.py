"""lm-evaluation-harness tasks from local task files, on the tiny model through its runtime; the adapter
agrees with the harness's own HFLM on the same torch model; the config fields' validation.

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
    from tasks import runtimes

    runtime = runtimes.load(tiny_dir, "cpu")
    yield runtime
    runtime.close()


def test_shipped_example_task_scores_limit_examples(tiny):
    from tasks.measurement.lm_eval_adapter import run_lm_eval
    from tasks.measurement.record import Quality

    figures = run_lm_eval(tiny, ["sentiment_mc"], EXAMPLE, limit=4)
    assert 0.0 <= figures["lm_eval/sentiment_mc/acc"] <= 1.0
    assert 0.0 <= figures["lm_eval/sentiment_mc/acc_norm"] <= 1.0
    assert figures["lm_eval/sentiment_mc/n"] == 4
    assert all(isinstance(v, (int, float)) for v in figures.values())
    quality = Quality(accuracy=0.5, accuracy_n=4, accuracy_ci95=0.4, accuracy_ci95_lo=0.1, accuracy_ci95_hi=0.9,
                      perplexity=10.0, perplexity_tokens=16, lm_eval=figures)
    assert set(figures) <= set(quality.metrics())  # the lm_eval/ family is logged to MLflow


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
    figures = run_lm_eval(tiny, ["mini_boolq"], tmp_path, limit=2)
    assert 0.0 <= figures["lm_eval/mini_boolq/acc"] <= 1.0 and figures["lm_eval/mini_boolq/n"] == 2

    with pytest.raises(GreenlaneError, match=r"boolq not defined by a YAML in .*; defined there: mini_boolq"):
        run_lm_eval(tiny, ["boolq"], tmp_path, limit=2)
    (tmp_path / "data" / "dev.jsonl").unlink()
    with pytest.raises(GreenlaneError, match="lm-eval task data not found"):
        run_lm_eval(tiny, ["mini_boolq"], tmp_path, limit=2)


# Float32 on CPU, one sequence with a KV-cached prefix (adapter) vs a right-padded batch (HFLM): the sums of
# log-probs agree to ~1e-6 nats (measured 1.3e-6 per request, 4e-6 over a 61-token rolling document).
TOLERANCE_NATS = 1e-4


def test_adapter_scores_as_the_harness_hflm_does_on_the_same_model(tiny):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from tasks.measurement.lm_eval_adapter import runtime_lm

    # A 32-token window, so that long contexts are cut from the left and documents span several windows.
    ours = runtime_lm(tiny, max_length=32)
    hflm = HFLM(pretrained=tiny.model, tokenizer=tiny.tokenizer, batch_size=4, max_length=32)
    pairs = [("The sky is", " blue"),
             ("Question: is fire hot?\nAnswer: ", "yes"),  # trailing space moves to the continuation
             ("", "Hello world"),  # empty context: conditioned on the prefix token
             ("A long story " * 20, " ends here."),  # longer than the window
             ("Sentiment:", " positive"), ("Sentiment:", " negative"),  # one context, two choices
             ("Once upon a time", " time time")]  # what the tiny model says greedily
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    got, want = ours.loglikelihood(requests), hflm.loglikelihood(requests)
    assert [g[0] for g in got] == pytest.approx([w[0] for w in want], abs=TOLERANCE_NATS)
    assert [g[1] for g in got] == [w[1] for w in want] and got[-1][1]

    document = [Instance("loglikelihood_rolling", {}, ("The quick brown fox jumps over the lazy dog. " * 6,), 0)]
    assert ours.loglikelihood_rolling(document) == pytest.approx(hflm.loglikelihood_rolling(document),
                                                                 abs=TOLERANCE_NATS)

    prompts = [Instance("generate_until", {}, ("Once upon a time", {"until": ["."], "max_gen_toks": 10}), 0),
               Instance("generate_until", {}, ("Hello", {"until": ["Found"], "max_gen_toks": 6}), 1)]
    assert ours.generate_until(prompts) == hflm.generate_until(prompts)


def test_missing_harness_says_how_to_install(monkeypatch):
    from tasks.measurement.lm_eval_adapter import run_lm_eval

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now raises ImportError
    with pytest.raises(GreenlaneError, match=r"pip install 'greenlane\[lmeval\]'"):
        run_lm_eval(None, ["sentiment_mc"], EXAMPLE)


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
