"""Optional: lm-evaluation-harness tasks from local task files, on a variant's runtime.

Users name tasks (`eval.lm_eval_tasks`) defined by YAML files in a folder of theirs
(`eval.lm_eval_include_path`), whose data are local files (`dataset_path: json` with
`data_files`). Only that folder is indexed, not the harness's built-in tasks: those
point at the Hugging Face hub, and greenlane runs offline. A standard task runs the
same way once its YAML is copied into the folder and pointed at a local copy of its
data (see tasks/data/lm_eval/ for a worked example and the README).

The harness sees the variant through `RuntimeLM`, an `LM` over any loaded
`tasks.runtimes` runtime, so a GGUF or ONNX variant is scored as it is served. It
tokenizes as the harness's own `HFLM` does (its `TemplateLM` base: trailing spaces of
a context move to the continuation, the pair is encoded whole and then split), and
scores with `Runtime.logits`; tests/measurement/test_lm_eval_adapter.py checks that
it agrees with `HFLM` on the same model.

Needs `pip install 'greenlane[lmeval]'`; nothing here is imported by the default
pipeline. Returns plain numbers named `lm_eval/<task>/<metric>`, plus
`lm_eval/<task>/n`, the examples scored. No MLflow, no carbon.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import types
from pathlib import Path

import numpy as np

from tasks.errors import GreenlaneError
from tasks.runtimes.base import log_softmax

INSTALL_HINT = "pip install 'greenlane[lmeval]'"
DEFAULT_MAX_GEN_TOKS = 256  # the harness's default for generate_until tasks that name no max_gen_toks


def run_lm_eval(runtime, tasks: list[str], include_path: str | Path, limit: int | None = None,
                max_length: int | None = None) -> dict:
    """Score the loaded `runtime` on the named tasks; `limit` caps the examples per task (the first N).

    `max_length` is the context window in tokens (default: the model's, at most 2048). Relative `data_files`
    in the task YAMLs are read from `include_path` (the harness builds its tasks with that folder as the
    working directory).
    """
    if not tasks:
        return {}
    lm_eval = _import_lm_eval()
    from lm_eval.tasks import TaskManager

    folder = Path(include_path).expanduser().resolve()
    if not folder.is_dir():
        raise GreenlaneError(f"lm-eval task folder not found: {folder} (eval.lm_eval_include_path)")
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        defined = ", ".join(sorted(manager.all_tasks)) or "none"
        raise GreenlaneError(f"lm-eval task(s) {', '.join(unknown)} not defined by a YAML in {folder}; "
                             f"defined there: {defined}")
    lm = runtime_lm(runtime, max_length)
    try:
        with _working_dir(folder):
            results = lm_eval.simple_evaluate(
                model=lm, tasks=list(tasks), limit=limit, task_manager=manager,
                log_samples=False, bootstrap_iters=1000,  # stderr of non-mean metrics; the default 100k is slow
            )
    except FileNotFoundError as err:  # a data file named by a task YAML
        raise GreenlaneError(f"lm-eval task data not found: {err} (relative data_files are read from {folder})") from None
    return figures(results)


def runtime_lm(runtime, max_length: int | None = None):
    """The harness's `LM` over `runtime` (needs lm_eval installed)."""
    _import_lm_eval()
    from lm_eval.api.model import TemplateLM

    # Combined here rather than at import, so this module imports without the harness installed.
    return types.new_class("RuntimeLM", (RuntimeLM, TemplateLM))(runtime, max_length)


class RuntimeLM:
    """`loglikelihood`, `loglikelihood_rolling` and `generate_until` over a `tasks.runtimes` Runtime.

    Mixed into lm_eval's `TemplateLM` by `runtime_lm`, which supplies `loglikelihood` (the encoding of
    context/continuation pairs, shared with `HFLM`) on top of `_loglikelihood_tokens` here.
    One sequence at a time: the runtime keeps the KV state of the last prefix, and requests are scored
    grouped by context, so the choices of a multiple-choice question share one prefill.
    """

    backend = "causal"

    def __init__(self, runtime, max_length: int | None = None):
        super().__init__()
        self.runtime = runtime
        self.tokenizer = runtime.tokenizer
        self.max_length = max_length or _max_length(self.tokenizer)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        # What an empty context is conditioned on, as in HFLM: beginning of sequence, else end of sequence.
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        special = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and string.startswith(self.tokenizer.decode(self.prefix_token_id)):
            special = {"add_special_tokens": False}  # the string brings its own BOS
        return self.tokenizer.encode(string, **special)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """(sum of the continuation's log-probs, whether greedy decoding gives the continuation) per
        `(key, context_ids, continuation_ids)`; a key is cached for the harness unless it is None."""
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for i in sorted(range(len(requests)), key=lambda i: requests[i][1]):  # same context: one prefill
            key, context, continuation = requests[i]
            answer = self._score(context, continuation)
            results[i] = answer
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, answer)
        return results

    def _score(self, context: list[int], continuation: list[int]) -> tuple[float, bool]:
        if not context or not continuation or len(continuation) > self.max_length:
            raise ValueError(f"cannot score {len(continuation)} continuation tokens after {len(context)} "
                             f"context tokens in a {self.max_length}-token window")
        # Too long: drop context from the left, as HFLM does. The last context token is read with the
        # continuation, so that row 0 of the logits scores the continuation's first token.
        whole = (context + continuation)[-(self.max_length + 1):]
        split = len(whole) - len(continuation) - 1
        logits = self.runtime.logits(whole[split:-1], prefix=whole[:split] or None)
        logprobs = log_softmax(logits)
        picked = logprobs[np.arange(len(continuation)), continuation]
        greedy = bool((logits.argmax(axis=-1) == np.asarray(continuation)).all())
        return float(picked.sum()), greedy

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of whole documents in disjoint windows of `max_length` tokens, each token scored
        once; the first conditioned on `prefix_token_id` (the harness's perplexity tasks)."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        totals = []
        for (text,) in [req.args for req in requests]:
            windows = get_rolling_token_windows(token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                                                max_seq_len=self.max_length, context_len=1)
            scores = self._loglikelihood_tokens([(None, *make_disjoint_window(w)) for w in windows])
            totals.append(sum(logprob for logprob, _ in scores))
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), totals[-1])
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Generation up to end of sequence or `max_gen_toks`, cut at the first `until` string."""
        from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

        eos = self.tokenizer.decode(self.eot_token_id, skip_special_tokens=False)
        out = []
        for context, gen_kwargs in [req.args for req in requests]:
            kwargs = normalize_gen_kwargs(gen_kwargs, DEFAULT_MAX_GEN_TOKS)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen_toks = kwargs["max_gen_toks"]
            if max_gen_toks >= self.max_length:
                raise ValueError(f"max_gen_toks {max_gen_toks} leaves no room for a prompt in a "
                                 f"{self.max_length}-token window")
            ids = self.tok_encode(context)[-(self.max_length - max_gen_toks):]
            temperature = float(kwargs["temperature"]) if kwargs["do_sample"] else 0.0
            generation = self.runtime.generate(ids, max_gen_toks, ignore_eos=False, temperature=temperature)
            text = self.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
            out.append(postprocess_generated_text(text, until, None))
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), out[-1])
        return out


def _max_length(tokenizer) -> int:
    """The context window: the model's as the harness reads it (its config.json, kept in every variant directory
    beside the tokenizer, else the tokenizer's limit), but at most the harness's default of 2048 tokens, which
    is also the KV cache the llama.cpp runtime allocates (tasks/runtimes/llamacpp.py MAX_CTX)."""
    from lm_eval.models.utils import DEFAULT_MAX_LENGTH, resolve_max_length

    config = Path(getattr(tokenizer, "name_or_path", "") or ".") / "config.json"
    fields = types.SimpleNamespace(**json.loads(config.read_text())) if config.is_file() else None
    return min(resolve_max_length(fields, tokenizer, default=DEFAULT_MAX_LENGTH), DEFAULT_MAX_LENGTH)


def figures(results: dict) -> dict:
    """`lm_eval/<task>/<metric>` for every numeric result (the filter is appended when not `none`), and
    `lm_eval/<task>/n` from the harness's effective sample counts."""
    out: dict[str, float | int] = {}
    for task, metrics in results["results"].items():
        for key, value in metrics.items():
            metric, sep, filt = key.partition(",")
            if not sep or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                continue  # alias, name, sample_len, and stderr "N/A"
            name = metric if filt == "none" else f"{metric}.{filt}"
            out[f"lm_eval/{task}/{name}"] = float(value)
    for task, counts in results.get("n-samples", {}).items():
        out[f"lm_eval/{task}/n"] = int(counts["effective"])
    return out


def _import_lm_eval():
    # Offline before the harness (and `datasets`, which reads these at import) loads: local task data only.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import lm_eval
    except ImportError:
        raise GreenlaneError(f"eval.lm_eval_tasks needs lm-evaluation-harness, which is not installed: {INSTALL_HINT}") from None
    import datasets

    datasets.config.HF_HUB_OFFLINE = True  # in case `datasets` was imported before the variables were set
    return lm_eval


@contextlib.contextmanager
def _working_dir(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
