"""Runs on a real SQLite MLflow store: concurrent child runs land in the experiment they were given, once each."""

from __future__ import annotations

import subprocess
import sys

from mlflow import MlflowClient

from tasks.tracking import runs

CHILD = """
import sys
from tasks.tracking import runs
uri, exp, parent, name = sys.argv[1:5]
run_id = runs.ensure_run(uri, exp, key=f"dag-1/{name}", run_name=name, tags={runs.PARENT_TAG: parent})
runs.log_record(uri, run_id, metrics={"energy_j_per_1k_tokens": float(len(name))}, params={"variant": name}, tags={})
runs.finish(uri, run_id)
"""


def test_concurrent_child_runs_land_in_the_right_experiment_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "greenlane-concurrency", artifact_location=(tmp_path / "art").as_uri())
    parent = runs.ensure_run(uri, exp, key="dag-1", run_name="optimize dag-1")
    names = [f"v{i}@cpu" for i in range(6)]
    # Separate processes, as Airflow's LocalExecutor and Celery workers run mapped tasks.
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, uri, exp, parent, n]) for n in names]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    c = MlflowClient(uri)
    children = c.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.info.run_name for r in children) == names
    assert all(r.info.status == "FINISHED" and r.data.params["variant"] == r.info.run_name for r in children)
    # A retried task finds its run again instead of adding one, and the run is live again until it finishes.
    again = runs.ensure_run(uri, exp, key="dag-1/v0@cpu", run_name="v0@cpu")
    assert again == next(r.info.run_id for r in children if r.info.run_name == "v0@cpu")
    assert c.get_run(again).info.status == "RUNNING" and len(c.search_runs([exp])) == len(names) + 1
    default = c.get_experiment_by_name("Default")
    assert default is None or c.search_runs([default.experiment_id]) == []
    assert c.get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
