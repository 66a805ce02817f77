"""kill -9 of a real `greenlane run`, then the next run; two runs on one home; where a failed run's log is.

After a run dies by SIGKILL its state stays open (the DAG run `running`, MLflow runs RUNNING); the next run in
the same home closes it as failed with the reason and then runs normally. While a run holds a home, a second
one exits 2 with one line naming the holder. A run that fails names a log file that holds the traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from faults_helpers import REPO, RUN_SETTINGS, SMALL_RUN, new_home, processes_of, start_run

# The killed run: one variant (no second to build first), a benchmark long enough for the kill to land inside.
KILLED_RUN = [a if not a.startswith("variants=") else "variants=[baseline]" for a in RUN_SETTINGS]
UNFINISHED = {"running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}


def read_until(proc: subprocess.Popen, needle: str, timeout_s: float = 240) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout_s
    for line in proc.stderr:
        seen.append(line)
        if needle in line or time.monotonic() > deadline:
            break
    assert any(needle in s for s in seen), "".join(seen)[-3000:]
    return seen


def wait_gone(home: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while processes_of(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_of(home), "processes of the killed run are still alive"


@pytest.fixture(scope="module")
def recovered(tiny_dir, tmp_path_factory, migrated_db) -> dict:
    """Run 1 SIGKILLed 2 s into its first benchmark; run 2 in the same home; run 3 started while run 2 holds it."""
    home = new_home(tmp_path_factory.mktemp("recovery"), migrated_db)
    t0 = time.monotonic()
    first = start_run(home, "--set", f"base_model={tiny_dir}", *KILLED_RUN)
    read_until(first, "benchmarking ")
    time.sleep(2)  # inside the benchmark: the model is loaded and generating
    os.killpg(first.pid, signal.SIGKILL)  # `greenlane run`; its DAG child dies with it (PR_SET_PDEATHSIG)
    first.wait(timeout=10)
    wait_gone(home)
    killed_s = time.monotonic() - t0
    mlflow = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    left_running = [r.info.run_id for r in mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
                    if r.info.status == "RUNNING"]
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        left_dag_runs = db.execute("select run_id, state from dag_run").fetchall()

    t1 = time.monotonic()
    second = start_run(home, "--set", f"base_model={tiny_dir}", *SMALL_RUN)
    seen = read_until(second, "starting Airflow DAG")
    t2 = time.monotonic()
    third = start_run(home, "--set", f"base_model={tiny_dir}", *SMALL_RUN)
    third_err = third.communicate(timeout=60)[1]
    third_s = time.monotonic() - t2
    second_err = "".join(seen) + second.communicate(timeout=600)[1]
    print(f"\nkill -9 run: {killed_s:.1f} s to its benchmark and gone; re-run: {time.monotonic() - t1:.1f} s; "
          f"the concurrent run exited {third.returncode} in {third_s:.1f} s")
    return {"home": home, "left_running": left_running, "left_dag_runs": left_dag_runs, "mlflow": mlflow,
            "second": second, "second_err": second_err, "third": third, "third_err": third_err, "third_s": third_s}


def test_a_run_after_kill9_closes_what_the_killed_run_left_open(recovered):
    home, mlflow, err = recovered["home"], recovered["mlflow"], recovered["second_err"]
    # what kill -9 left: the state the next run must close
    assert len(recovered["left_running"]) >= 2, recovered["left_running"]  # the parent and the benchmarking child
    assert [s for _, s in recovered["left_dag_runs"]] == ["running"], recovered["left_dag_runs"]
    stale_run_id = recovered["left_dag_runs"][0][0]

    assert recovered["second"].returncode == 0, err[-3000:]
    closed_line = [s for s in err.splitlines() if "closed stale state" in s]
    assert len(closed_line) == 1 and "1 DAG run(s) left running marked failed" in closed_line[0], err[-3000:]
    assert f"{len(recovered['left_running'])} MLflow run(s) left RUNNING marked FAILED" in closed_line[0]
    print(f"\n{closed_line[0].strip()}")

    runs = {r.info.run_id: r for r in mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])}
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        dag_runs = dict(db.execute("select run_id, state from dag_run").fetchall())
        ti_states = {s for (s,) in db.execute("select state from task_instance")}
    assert dag_runs[stale_run_id] == "failed" and len(dag_runs) == 2, dag_runs
    new_run_id = next(r for r in dag_runs if r != stale_run_id)
    assert dag_runs[new_run_id] == "success", dag_runs
    assert not ti_states & UNFINISHED, ti_states
    for run_id in recovered["left_running"]:
        r = runs[run_id]
        assert r.info.status == "FAILED", (r.info.run_name, r.info.status)
        assert r.data.tags["greenlane.end_reason"] == (
            f"stale: the greenlane run that owned it ended without closing it (found at start of {new_run_id})")

    champions = [(m.name, alias, v) for m in mlflow.search_registered_models() for alias, v in m.aliases.items()]
    assert champions, "the re-run promoted nothing"  # its gates are relaxed: a champion is expected
    for name, alias, version in champions:
        run = runs[mlflow.get_model_version(name, version).run_id]
        assert run.info.status == "FINISHED", (alias, run.info.run_name, run.info.status)
        assert run.info.run_id not in recovered["left_running"]
    assert not processes_of(home)


def test_a_second_run_on_a_busy_home_exits_2_with_one_line(recovered):
    third, err, home = recovered["third"], recovered["third_err"], recovered["home"]
    assert third.returncode == 2, err[-3000:]
    assert err.strip().splitlines() == [
        f"greenlane: error: greenlane home {home} is in use by another greenlane run (pid {recovered['second'].pid}); "
        f"wait for it to end, or set GREENLANE_HOME to another directory"], err[-3000:]
    assert recovered["third_s"] < 30, recovered["third_s"]  # refused at once, not after Airflow started
    assert recovered["second"].returncode == 0, recovered["second_err"][-3000:]  # the holder finished undisturbed


def test_a_failed_run_names_a_log_that_holds_the_traceback(tiny_dir, tmp_path, migrated_db):
    """The config file turns into bad YAML after `greenlane run` validated it: the DAG's `prepare` fails."""
    home = new_home(tmp_path, migrated_db)
    config = tmp_path / "experiment.yaml"
    shutil.copy(REPO / "configs" / "default.yaml", config)
    t0 = time.monotonic()
    proc = start_run(home, "--config", str(config), "--set", f"base_model={tiny_dir}", *SMALL_RUN)
    seen = read_until(proc, "starting Airflow DAG")
    config.write_text("variants: [baseline, bf16\n")
    err = "".join(seen) + proc.communicate(timeout=300)[1]
    assert proc.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("greenlane: error: DAG run manual__") and " ended failed; " in last, last
    log_file = Path(last.rsplit(": ", 1)[1])
    assert log_file.is_file() and log_file.is_relative_to(home / "runs"), last
    text = log_file.read_text()
    assert "is not valid YAML" in text and "Traceback" in text, text[-3000:]
    assert "\x1b[" not in text  # colour codes stripped
    print(f"\nfailed run: {time.monotonic() - t0:.1f} s; {last}; the log holds {len(text)} characters")
