"""Experiments and runs: one parent run per DAG run, one nested child run per variant x target.

Runs are found again by a `greenlane.key` tag, so re-running a task (an
Airflow retry, or a cleared task) reuses its run instead of adding another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from pathlib import Path
from urllib.parse import quote

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

KEY_TAG = "greenlane.key"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"  # MLflow's run description


_OPENED: set[str] = set()  # SQLite stores this process has opened once under the lock


def client(tracking_uri: str) -> MlflowClient:
    # The registry lives in the same store; naming it stops MLflow from falling back to a process-global
    # registry URI that something else in this process may have set.
    if tracking_uri.startswith("sqlite:///") and tracking_uri not in _OPENED:
        c = _open_sqlite_store(tracking_uri, Path(tracking_uri.removeprefix("sqlite:///").split("?")[0]))
        _OPENED.add(tracking_uri)
        return c
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _open_sqlite_store(tracking_uri: str, path: Path) -> MlflowClient:
    """A client whose store's tracking and registry sides were first opened holding a lock file beside it.

    MLflow creates a new store's tables on first use (alembic migrations; the tracking side already when the
    client is constructed); two runs doing that at once on one new store fail ("No such index", "table
    _alembic_tmp_experiments already exists": tests/faults/test_shared_store.py), so the first use is
    serialized. A folder this user cannot write holds no store being created: there it opens without the lock.
    """
    from filelock import FileLock

    folder = path.parent if str(path.parent) else Path(".")
    lock = FileLock(str(path) + ".lock") if folder.is_dir() and os.access(folder, os.W_OK) else contextlib.nullcontext()
    with lock:
        c = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        c.search_registered_models(max_results=1)
    return c


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    """Get or create the experiment; call once, upstream of any fan-out, and pass the id on."""
    c = client(tracking_uri)
    found = c.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        # The MLflow UI opens a "model training" experiment on its runs table (not the GenAI trace overview).
        return c.create_experiment(name, artifact_location=artifact_location,
                                   tags={"mlflow.experimentKind": "custom_model_development"})
    except MlflowException:  # created concurrently by another process
        return c.get_experiment_by_name(name).experiment_id


def find_run(tracking_uri: str, experiment_id: str, key: str):
    runs = client(tracking_uri).search_runs(
        [experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1
    )
    return runs[0] if runs else None


def ensure_run(tracking_uri: str, experiment_id: str, key: str, run_name: str, tags: dict | None = None) -> str:
    """The run tagged `key`, created if absent (so a retried task lands in the same run)."""
    existing = find_run(tracking_uri, experiment_id, key)
    if existing is not None:
        if existing.info.status != "RUNNING":  # a retry after a failure (or a re-run): the run is live again
            client(tracking_uri).update_run(existing.info.run_id, status="RUNNING")
        return existing.info.run_id
    run = client(tracking_uri).create_run(
        experiment_id, run_name=run_name, tags={KEY_TAG: key, **{k: str(v) for k, v in (tags or {}).items()}}
    )
    return run.info.run_id


def log_record(tracking_uri: str, run_id: str, metrics: dict, params: dict, tags: dict) -> None:
    """Log one batch: finite numeric metrics, params (stringified, 6000 chars max), tags."""
    ts = _now_ms()
    metric_rows = [
        Metric(k, float(v), ts, 0) for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    existing = client(tracking_uri).get_run(run_id).data.params
    # MLflow params are immutable: a re-run logs only params it has not logged before.
    param_rows = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in existing]
    tag_rows = [RunTag(k, str(v)) for k, v in tags.items()]
    client(tracking_uri).log_batch(run_id, metrics=metric_rows, params=param_rows, tags=tag_rows)


def log_json(tracking_uri: str, run_id: str, obj, artifact_file: str) -> None:
    log_text(tracking_uri, run_id, json.dumps(obj, indent=2, default=str), artifact_file)


def log_text(tracking_uri: str, run_id: str, text: str, artifact_file: str) -> None:
    client(tracking_uri).log_text(run_id, text, artifact_file)


def log_artifact_file(tracking_uri: str, run_id: str, path: Path, artifact_path: str | None = None) -> None:
    """One local file as an artifact of the run, under `artifact_path` (default: the top level)."""
    client(tracking_uri).log_artifact(run_id, str(path), artifact_path)


def log_dir(tracking_uri: str, run_id: str, local_dir: Path, artifact_path: str) -> None:
    client(tracking_uri).log_artifacts(run_id, str(local_dir), artifact_path)


def set_description(tracking_uri: str, run_id: str, markdown: str) -> None:
    """The run's description in the MLflow UI (MLflow's `mlflow.note.content` tag), rendered as Markdown."""
    client(tracking_uri).set_tag(run_id, NOTE_TAG, markdown)


def rename_run(tracking_uri: str, run_id: str, name: str) -> None:
    """The name the MLflow UI lists the run under (MLflow keeps it in the `mlflow.runName` tag too)."""
    client(tracking_uri).update_run(run_id, name=name)


def compare_runs_link(experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's side-by-side view of `run_ids`, relative to the UI, for a link in a run's description."""
    runs_param = quote(json.dumps(list(run_ids)))
    return f"#/compare-runs?runs={runs_param}&experiments={quote(json.dumps([str(experiment_id)]))}"


@contextlib.contextmanager
def system_metrics(tracking_uri: str, run_id: str, sampling_interval_s: float = 5.0):
    """MLflow's system-metrics monitor (CPU, memory, disk, network; GPU where pynvml finds one) on `run_id`.

    One background thread sampling every few seconds: cheap next to a benchmark. It never fails the task;
    MLflow logs a warning when it cannot sample.
    """
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # no start/stop chatter per benchmark
    monitor = SystemMetricsMonitor(run_id, sampling_interval=sampling_interval_s, tracking_uri=tracking_uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()
        # MLflow publishes only every `sampling_interval_s`; one closing sample so a short benchmark has one too.
        try:
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as err:  # system metrics are a convenience: never fail a benchmark over them
            logging.getLogger("greenlane").warning("system metrics not logged for run %s: %s", run_id, err)


def finish(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    client(tracking_uri).set_terminated(run_id, status)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
