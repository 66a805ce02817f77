"""Closing what an interrupted run left open in MLflow: its parent and child runs, and the aliases it moved."""

from __future__ import annotations

from pathlib import Path

from tasks.tracking.registry import alias_for, undo_promotion
from tasks.tracking.runs import PARENT_TAG, client, finish

CHAMPION_PREFIX = alias_for("")  # `champion-<target>`; the plain `champion` follows its target's alias

END_REASON_TAG = "greenlane.end_reason"
DAG_RUN_TAG = "greenlane.dag_run_id"


def kill_dag_run(tracking_uri: str, dag_run_id: str, reason: str) -> tuple[int, list[str]]:
    """Mark the DAG run's parent run and its children that are still RUNNING as KILLED, tagged with the reason.

    A cancelled run promotes nothing: a champion alias that already points at one of its model versions (the
    signal landed inside, or just after, the promote task) is put back where it was. Returns (runs closed,
    what was undone).
    """
    c = client(tracking_uri)
    experiments = [e.experiment_id for e in c.search_experiments()]
    parents = c.search_runs(experiments, filter_string=f"tags.`{DAG_RUN_TAG}` = '{dag_run_id}'") if experiments else []
    children = [r for p in parents
                for r in c.search_runs([p.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{p.info.run_id}'")]
    closed = 0
    for r in [*children, *parents]:
        if r.info.status in ("RUNNING", "SCHEDULED"):
            c.set_tag(r.info.run_id, END_REASON_TAG, reason)
            finish(tracking_uri, r.info.run_id, "KILLED")
            closed += 1
    ours = {r.info.run_id for r in children}
    undone = []
    for m in c.search_registered_models() if ours else []:
        moved = {alias: version for alias, version in m.aliases.items()
                 if alias.startswith(CHAMPION_PREFIX) and c.get_model_version(m.name, version).run_id in ours}
        for alias, version in moved.items():
            note = undo_promotion(tracking_uri, m.name, alias.removeprefix(CHAMPION_PREFIX), version)
            if note:
                undone.append(note)
    return closed, undone


def close_runs_of(tracking_uri: str, owned, reason: str, status: str = "FAILED") -> int:
    """Close every RUNNING (or SCHEDULED) run whose DAG run id (its own `greenlane.dag_run_id` tag, or its
    parent's) satisfies `owned(dag_run_id)`, as `status`, tagged with the reason. Returns how many were closed.

    Runs without a DAG run id (logged by hand, or by another tool into the same store) are never touched.
    """
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return 0  # a store not created yet holds no runs, and opening it would create it (seconds of migrations)
    c = client(tracking_uri)
    experiments = [e.experiment_id for e in c.search_experiments()]
    if not experiments:
        return 0
    open_runs = [r for s in ("RUNNING", "SCHEDULED")
                 for r in c.search_runs(experiments, filter_string=f"attributes.status = '{s}'")]
    parent_dag_run: dict[str, str | None] = {}

    def dag_run_of(run) -> str | None:
        if DAG_RUN_TAG in run.data.tags:
            return run.data.tags[DAG_RUN_TAG]
        parent = run.data.tags.get(PARENT_TAG)
        if parent is None:
            return None
        if parent not in parent_dag_run:
            parent_dag_run[parent] = c.get_run(parent).data.tags.get(DAG_RUN_TAG)
        return parent_dag_run[parent]

    closed = 0
    for r in open_runs:
        dag_run_id = dag_run_of(r)
        if dag_run_id is not None and owned(dag_run_id):
            c.set_tag(r.info.run_id, END_REASON_TAG, reason)
            finish(tracking_uri, r.info.run_id, status)
            closed += 1
    return closed
