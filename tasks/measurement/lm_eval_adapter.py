"""Optional: lm-evaluation-harness tasks from local task files, on an already-loaded model.

Users name tasks (`eval.lm_eval_tasks`) defined by YAML files in a folder of theirs
(`eval.lm_eval_include_path`), whose data are local files (`dataset_path: json` with
`data_files`). Only that folder is indexed, not the harness's built-in tasks: those
point at the Hugging Face hub, and greenlane runs offline. A standard task runs the
same way once its YAML is copied into the folder and pointed at a local copy of its
data (see tasks/data/lm_eval/ for a worked example and the README).

Needs `pip install 'greenlane[lmeval]'`; nothing here is imported by the default
pipeline. Returns plain numbers named `lm_eval/<task>/<metric>`, plus
`lm_eval/<task>/n`, the examples scored. No MLflow, no carbon.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from tasks.errors import GreenlaneError

INSTALL_HINT = "pip install 'greenlane[lmeval]'"


def run_lm_eval(model, tokenizer, tasks: list[str], include_path: str | Path, limit: int | None = None,
                batch_size: int = 8) -> dict:
    """Score `model` on the named tasks; `limit` caps the examples per task (the first N).

    Relative `data_files` in the task YAMLs are read from `include_path` (the harness builds
    its tasks with that folder as the working directory).
    """
    if not tasks:
        return {}
    lm_eval = _import_lm_eval()
    from lm_eval.models.huggingface import HFLM
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
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    try:
        with _working_dir(folder):
            results = lm_eval.simple_evaluate(
                model=lm, tasks=list(tasks), limit=limit, task_manager=manager,
                log_samples=False, bootstrap_iters=1000,  # stderr of non-mean metrics; the default 100k is slow
            )
    except FileNotFoundError as err:  # a data file named by a task YAML
        raise GreenlaneError(f"lm-eval task data not found: {err} (relative data_files are read from {folder})") from None
    return figures(results)


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
