"""SIGTERM and SIGINT during a real `greenlane run` on the tiny model, and bad input met inside a DAG task.

A signal during the benchmark must end the run promptly with 143 (SIGTERM) or 130 (SIGINT): no alias moved,
no MLflow run left RUNNING (the open ones KILLED, with the reason tagged), the DAG run failed, no process left.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from faults_helpers import REPO, RUN_SETTINGS, new_home, processes_of


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_benchmark_cancels_the_run(tiny_dir, tmp_path, migrated_db, sig, code):
    home = new_home(tmp_path, migrated_db)
    env = {**os.environ, "GREENLANE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tasks.cli", "run", "--set", f"base_model={tiny_dir}", *RUN_SETTINGS],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # the progress display: one line per step
        seen.append(line)
        if "benchmarking " in line or time.monotonic() > deadline:
            break
    assert any("benchmarking " in s for s in seen), "".join(seen)[-3000:]
    time.sleep(2)  # inside the benchmark: the model is loaded and generating
    proc.send_signal(sig)
    t0 = time.monotonic()
    rest = proc.communicate(timeout=60)[1]
    stop_s = time.monotonic() - t0
    last = rest.strip().splitlines()[-1]
    assert proc.returncode == code, rest[-3000:]
    assert last.startswith(f"greenlane: error: cancelled: {sig.name}") and "nothing promoted" in last, last
    assert "Traceback" not in rest
    print(f"\n{sig.name}: exit {proc.returncode} {stop_s:.2f} s after the signal; progress before it:\n{''.join(seen)}")
    assert stop_s < 20, f"took {stop_s:.1f} s to stop"

    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    for model in c.search_registered_models():
        assert not model.aliases, f"{model.name} has aliases {model.aliases}"
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()])
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    killed = [r for r in runs if r.info.status == "KILLED"]
    parents = [r for r in killed if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(killed) >= 2, [(r.info.run_name, r.info.status) for r in runs]
    assert all(r.data.tags["greenlane.end_reason"].startswith(f"cancelled: {sig.name}") for r in killed)

    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        assert db.execute("select state from dag_run").fetchall() == [("failed",)]
        states = {s for (s,) in db.execute("select state from task_instance")}
    assert not states & {"running", "queued", "scheduled", "up_for_retry"}, states
    assert not processes_of(home), "processes of the cancelled run are still alive"


def test_the_runner_predicts_the_run_id_dag_test_gives():
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    from tasks.runner import dag_run_id

    when = dt.datetime.now(dt.timezone.utc)
    assert dag_run_id(when) == DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)


def test_bad_input_inside_a_task_is_not_retried(tmp_path, migrated_db):
    """A conf that only the DAG sees (as `greenlane trigger` sends it) fails `prepare` once, without the 30 s
    retry backoff: GreenlaneError is deterministic."""
    code = ("import json, sys; from tasks.runner import run_dag; "
            "print(json.dumps(run_dag('greenlane_optimize', json.loads(sys.argv[1]))))")
    conf = {"overrides": {"benchmark.prompts": 10**9}}
    t0 = time.monotonic()
    home = new_home(tmp_path, migrated_db)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(conf)], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "GREENLANE_HOME": str(home)}, timeout=300)
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    _, state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state == "failed"
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        rows = db.execute("select try_number, state from task_instance where task_id = 'prepare'").fetchall()
        retried = db.execute("select task_id, try_number from task_instance where try_number > 1").fetchall()
    assert rows == [(1, "failed")], rows
    assert not retried, retried  # promote and check_complete, run after a failure too, fail at once as well
    assert elapsed < 60, f"{elapsed:.0f} s: a 30 s retry backoff happened"
    assert "benchmark.prompts: Input should be less than or equal to 10000" in out.stdout + out.stderr
    print(f"\nbad conf: DAG run failed after {elapsed:.1f} s, prepare tried once")


def test_the_retry_policy_fails_greenlane_errors_only():
    sys.path.insert(0, str(REPO / "dags"))
    from airflow.sdk import RetryAction
    from greenlane_wiring import DEFAULT_ARGS

    from tasks.errors import GreenlaneError, NoChampion

    policy = DEFAULT_ARGS["retry_policy"]
    assert policy.evaluate(GreenlaneError("x"), 1, 2).action == RetryAction.FAIL
    assert policy.evaluate(NoChampion("x"), 1, 2).action == RetryAction.FAIL
    assert policy.evaluate(ConnectionError("x"), 1, 2).action == RetryAction.DEFAULT  # transient: retried
