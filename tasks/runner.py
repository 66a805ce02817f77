"""Running a DAG with embedded defaults: SQLite Airflow and SQLite MLflow under one home.

`airflow dag.test()` executes every task in one process, so one laptop runs
the same DAG a scheduler would. The Airflow home and its metadata DB live
under the greenlane home and are migrated on first use.

That process is a child of the caller, in a session of its own, so that
cancelling is a first-class outcome: on SIGTERM or SIGINT the caller kills the
child's whole process group at once (inside a task Airflow's own handler would
only call `on_kill` and let the run go on to promote), then marks the DAG run
and its unfinished tasks failed and the run's open MLflow runs KILLED, with the
reason as the tag `greenlane.end_reason`, and raises `Cancelled` (exit 143 or
130). A second signal during that clean-up exits at once and leaves the state
as it is. The child dies with its caller (PR_SET_PDEATHSIG), so a killed
`greenlane run` never leaves a DAG running on its own.

The caller holds the home's lock for the whole run, and the child first closes what runs that died left
open (tasks/recovery.py). The child's output goes to the terminal and to `<home>/runs/<run>/run.log`: dag.test
runs the tasks in-process and their logs and tracebacks go to its output, not to `<home>/airflow/logs`.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tasks.config import REPO_ROOT, greenlane_home
from tasks.errors import Cancelled, GreenlaneError
from tasks.recovery import close_stale, fail_dag_run, home_lock

DAGS_FOLDER = REPO_ROOT / "dags"
ANSI_ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
log = logging.getLogger("greenlane")


def airflow_env(home: Path) -> dict[str, str]:
    """Settings for an embedded Airflow; applied before airflow is imported."""
    airflow_home = home / "airflow"
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        # ERROR: a failing task still prints its traceback, but dag.test's once-a-second
        # "No tasks to run" warnings while a retry waits do not flood the progress display.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # logging a model re-reads its files: one bar per variant
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_OFFLINE": "1",
        "GREENLANE_HOME": str(home),
    }


def configure_airflow(home: Path | None = None) -> Path:
    home = home or greenlane_home()
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_env(home))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-variant "Loading weights" bars would interleave with the progress lines
    return home


def migrate_db() -> None:
    """Migrate the metadata DB and create the benchmark pools the DAGs draw from (one per served queue)."""
    from airflow.utils.db import upgradedb

    from tasks.orchestration import ensure_pools, served_queues

    upgradedb()
    ensure_pools(served_queues())


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise GreenlaneError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise GreenlaneError(f"no DAG {dag_id!r} in {DAGS_FOLDER}; found: {', '.join(bag.dag_ids)}")
    return dag


def dag_run_id(logical_date: dt.datetime) -> str:
    """The run id dag.test gives a run whose logical date and run_after are both `logical_date`."""
    return f"manual__{logical_date.isoformat()}"


class ProgressHandler(logging.Handler):
    """Prints each pipeline step as it happens, with the time since the run started (`t0`, time.monotonic())."""

    def __init__(self, t0: float):
        from rich.console import Console

        super().__init__(logging.INFO)
        self.console = Console(stderr=True, soft_wrap=True, width=150)  # width: logs and CI are not terminals
        self.t0 = t0

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.t0:7.1f}s[/dim]  {record.getMessage()}")


def show_progress(t0: float) -> None:
    """Send the `greenlane` logger's steps to stderr, timed from `t0`."""
    if not any(isinstance(h, ProgressHandler) for h in log.handlers):
        log.setLevel(logging.INFO)
        log.addHandler(ProgressHandler(t0))
        log.propagate = False


def run_dag(dag_id: str, conf: dict, progress_t0: float | None = None) -> tuple[str, str]:
    """Migrate if needed, run the DAG with `conf` in a child process; return (run_id, state).

    SIGTERM or SIGINT stops it (see the module docstring) and raises `Cancelled`.
    """
    home = configure_airflow()
    with home_lock(home):  # one run per home; the child closes stale state of earlier runs under it
        return _run_dag_locked(home, dag_id, conf, progress_t0)


def run_log(run_id: str) -> Path:
    """The DAG run's whole output, every task's log and traceback included: dag.test runs the tasks in-process
    and Airflow writes nothing under <home>/airflow/logs, so the runner keeps this copy."""
    from tasks.config import run_dir

    return run_dir(run_id) / "run.log"


def _run_dag_locked(home: Path, dag_id: str, conf: dict, progress_t0: float | None) -> tuple[str, str]:
    logical_date = dt.datetime.now(dt.timezone.utc)
    run_id = dag_run_id(logical_date)
    log_file = run_log(run_id)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="greenlane-run-") as tmp:
        result_file = Path(tmp) / "result.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "tasks.runner", dag_id, json.dumps(conf), logical_date.isoformat(),
             str(result_file), str(os.getpid()), "" if progress_t0 is None else repr(progress_t0)],
            cwd=Path.cwd(), start_new_session=True,  # its own process group: one killpg stops it and its children
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # through _tee: to the terminal and to run.log
            env={**os.environ, "PYTHONUNBUFFERED": "1", **({"FORCE_COLOR": "1"} if sys.stderr.isatty() else {})},
        )
        tee = threading.Thread(target=_tee, args=(child.stdout, log_file), daemon=True)
        tee.start()
        signum = _wait_cancellable(child)
        tee.join(timeout=5)  # the pipe closes when the child's process group is gone
        if signum is not None:
            reason = f"cancelled: {signal.Signals(signum).name} to greenlane (pid {os.getpid()})"
            _handle_second_signal()
            closed, undone = cancel_dag_run(home, dag_id, run_id, reason)
            moved = f"nothing promoted (promotion undone: {'; '.join(undone)})" if undone else "nothing promoted"
            raise Cancelled(signum, f"{reason}; DAG run {run_id} marked failed, {closed} MLflow run(s) marked "
                                    f"KILLED, {moved}")
        if not result_file.is_file():
            raise GreenlaneError(f"DAG run {run_id} ended without a result (runner exit code {child.returncode}); "
                                 f"its log: {log_file}")
        result = json.loads(result_file.read_text())
    if "error" in result:
        raise GreenlaneError(result["error"])
    return result["run_id"], result["state"]


def _tee(pipe, log_file: Path) -> None:
    """Copy the child's output to our stderr as it comes and to `log_file` (colour codes stripped)."""
    with pipe, log_file.open("ab") as out:
        for line in iter(pipe.readline, b""):
            try:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr is gone (a closed pipe): keep the log going
                pass
            out.write(ANSI_ESCAPE.sub(b"", line))
            out.flush()


def _wait_cancellable(child: subprocess.Popen) -> int | None:
    """Wait for `child`; on SIGTERM/SIGINT kill its process group at once and return the signal number.

    While it waits it imports what the clean-up needs (Airflow's ORM, MLflow: seconds of imports), so a
    cancel is not slowed by them.
    """
    received: list[int] = []

    def on_signal(signum, frame):
        if not received:
            received.append(signum)
            try:
                os.killpg(child.pid, signal.SIGKILL)  # SIGKILL: Airflow's in-task SIGTERM handler would not stop
            except ProcessLookupError:
                pass

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        import airflow.models.dagrun  # noqa: F401  (see the docstring)
        import tasks.tracking.cleanup  # noqa: F401

        child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return received[0] if received else None


def _handle_second_signal() -> None:
    """During the clean-up, another SIGTERM/SIGINT exits at once (the state is left for the next run to close)."""
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda signum, frame: os._exit(128 + signum))


def cancel_dag_run(home: Path, dag_id: str, run_id: str, reason: str) -> tuple[int, list[str]]:
    """Fail the DAG run and its unfinished tasks; mark its open MLflow runs KILLED.

    Returns how many MLflow runs were closed and the aliases (`model@alias`) that point at this run's versions:
    a signal that lands inside the promote task, the run's last few seconds, may find some already moved.
    """
    if (home / "airflow" / "airflow.db").is_file():  # absent: cancelled before Airflow created its DB
        fail_dag_run(dag_id, run_id, reason)
    return kill_mlflow_runs(run_id, reason)


def kill_mlflow_runs(run_id: str, reason: str) -> tuple[int, list[str]]:
    """The DAG run's parent MLflow run and its children still RUNNING -> KILLED, tagged with the reason; and
    the aliases that point at model versions of its runs."""
    from tasks.config import load_ctx_config, run_dir
    from tasks.tracking import cleanup

    config_file = run_dir(run_id) / "config.json"
    if not config_file.is_file():  # cancelled before the prepare task wrote it: no MLflow run exists yet
        return 0, []
    uri = load_ctx_config({"config_file": str(config_file)}).tracking_uri()
    return cleanup.kill_dag_run(uri, run_id, reason)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when the `greenlane` process that started it dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's clean-up still kills the group on SIGTERM/SIGINT
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(137)


def _tracking_uri(conf_json: str) -> str | None:
    """The MLflow store the run's config names; None when the conf does not load (the DAG's `prepare` then
    fails with the reason)."""
    from tasks.config import load_config

    conf = json.loads(conf_json)
    try:
        return load_config(conf.get("config_path"), conf.get("overrides")).tracking_uri()
    except Exception:  # noqa: BLE001  whatever is wrong with the conf is the prepare task's to report
        return None


def _child_main(dag_id: str, conf_json: str, logical_date: str, result_file: str, parent_pid: str,
                progress_t0: str) -> int:
    _die_with_parent(int(parent_pid))
    if progress_t0:
        show_progress(float(progress_t0))
    try:
        home = configure_airflow()
        migrate_db()
        # The parent holds the home's lock: whatever is still open here belongs to a run that died.
        closed = close_stale(home, dag_run_id(dt.datetime.fromisoformat(logical_date)), _tracking_uri(conf_json))
        if closed:
            log.warning(closed)
        dag = load_dag(dag_id)
        logging.getLogger("airflow").setLevel(logging.WARNING)
        when = dt.datetime.fromisoformat(logical_date)
        dagrun = dag.test(run_conf=json.loads(conf_json), logical_date=when, run_after=when)
        result = {"run_id": dagrun.run_id, "state": str(dagrun.state)}
    except GreenlaneError as err:
        result = {"error": str(err)}
    Path(result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(*sys.argv[1:]))
