"""One `greenlane run` per home at a time, and closing what earlier runs in the home left open.

Two runs on one home would share its SQLite Airflow and MLflow stores and its run directories, and each
would take the other's DAG run for a crashed one. So `greenlane run` holds an exclusive `flock` on
`<home>/run.lock` for its whole length; a second run exits 2 at once, naming the holder's pid (it does not
wait: a run takes minutes to hours). The kernel drops a `flock` when its holder dies, even by SIGKILL, so a
crashed run never blocks the next one.

Holding the lock, nothing else in this home is live: every embedded DAG run still `running` or `queued`, and
every RUNNING MLflow run of a DAG run of this home, belongs to a run that ended without closing it (kill -9,
power loss, OOM). The next run closes them as failed, with the reason, before it starts its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl  # flock: greenlane's runner is POSIX-only anyway (process groups, prctl)
import logging
import os
from pathlib import Path

from tasks.errors import GreenlaneError

LOCK_NAME = "run.lock"
log = logging.getLogger("greenlane")
_held: dict[Path, int] = {}  # lock file -> how many nested holds in this process


class HomeBusy(GreenlaneError):
    """Another `greenlane run` holds this home."""


@contextlib.contextmanager
def home_lock(home: Path):
    """Hold `<home>/run.lock` exclusively; raise HomeBusy (exit 2) at once if another process holds it.

    Re-entrant within a process (`greenlane run` takes it before preparing the model, `run_dag` again).
    """
    path = (home / LOCK_NAME).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    home.mkdir(parents=True, exist_ok=True)
    # No O_TRUNC: a process that fails to get the lock must not wipe the holder's pid.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise HomeBusy(f"greenlane home {home} is in use by another greenlane run (pid {holder}); wait for it "
                           f"to end, or set GREENLANE_HOME to another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def stale_reason(current_run_id: str) -> str:
    return f"stale: the greenlane run that owned it ended without closing it (found at start of {current_run_id})"


def close_stale(home: Path, current_run_id: str, tracking_uri: str | None) -> str | None:
    """Fail this home's DAG runs left running/queued and close the RUNNING MLflow runs of any DAG run of this
    home but `current_run_id`, as FAILED with the reason. Call only while holding `home_lock` and after the
    Airflow DB is migrated. Returns one line saying what was closed, or None when nothing was."""
    from tasks.config import load_ctx_config, run_dir
    from tasks.tracking import cleanup

    reason = stale_reason(current_run_id)
    stale, known = _open_dag_runs(current_run_id)
    for dag_id, run_id in stale:
        fail_dag_run(dag_id, run_id, reason)
    # The stores to look in: this run's, and those the stale runs logged to (the tracking URI may have changed).
    uris = {tracking_uri} if tracking_uri else set()
    for _, run_id in stale:
        config_file = run_dir(run_id) / "config.json"
        if config_file.is_file():
            try:
                uris.add(load_ctx_config({"config_file": str(config_file)}).tracking_uri())
            except (GreenlaneError, ValueError, OSError) as err:  # a config.json the crash left half-written
                log.warning("stale DAG run %s: %s", run_id, err)

    def ours(run_id: str) -> bool:
        # A DAG run of this home (in its Airflow DB, or with a run directory here): a shared tracking server
        # also holds runs of other homes and deployments, which may well be live.
        return run_id != current_run_id and (run_id in known or run_dir(run_id).is_dir())

    closed = 0
    for uri in sorted(uris):
        try:
            closed += cleanup.close_runs_of(uri, ours, reason, status="FAILED")
        except Exception as err:  # noqa: BLE001  an unreachable store: the run's own first MLflow call reports it
            log.warning("could not close stale MLflow runs in %s: %s", uri, str(err).splitlines()[0] if str(err) else err)
    if not stale and not closed:
        return None
    runs = ", ".join(run_id for _, run_id in stale) or "none"
    return (f"closed stale state of earlier runs in {home}: {len(stale)} DAG run(s) left running marked failed "
            f"({runs}), {closed} MLflow run(s) left RUNNING marked FAILED")


def _open_dag_runs(current_run_id: str) -> tuple[list[tuple[str, str]], set[str]]:
    """(dag_id, run_id) of the DAG runs left running or queued, and the run ids of all DAG runs in the DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        rows = session.query(DagRun.dag_id, DagRun.run_id, DagRun.state).all()
    stale = [(d, r) for d, r, s in rows if s in (DagRunState.RUNNING, DagRunState.QUEUED) and r != current_run_id]
    return stale, {r for _, r, _ in rows}


def fail_dag_run(dag_id: str, run_id: str, reason: str) -> None:
    """The DAG run failed, its unfinished tasks failed (never started: upstream_failed), the reason as its note."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy.exc import OperationalError

    try:
        with create_session() as session:
            dagrun = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
            if dagrun is None:  # cancelled before dag.test created it
                return
            for ti in dagrun.get_task_instances(session=session):
                if ti.state not in State.finished:
                    ti.state = TaskInstanceState.FAILED if ti.state is not None else TaskInstanceState.UPSTREAM_FAILED
                    ti.end_date = dt.datetime.now(dt.timezone.utc)
            dagrun.set_state(DagRunState.FAILED)
            dagrun.note = reason  # shown on the run in the Airflow UI
    except OperationalError as err:  # cancelled while the DB was being migrated: no DAG run in it yet
        log.warning("could not mark DAG run %s failed: %s", run_id, err)
