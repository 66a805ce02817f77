"""Closing what an interrupted run left open in MLflow: its parent and child runs, and the aliases it moved."""

from __future__ import annotations

from tasks.tracking.runs import PARENT_TAG, client, finish

END_REASON_TAG = "greenlane.end_reason"
DAG_RUN_TAG = "greenlane.dag_run_id"


def kill_dag_run(tracking_uri: str, dag_run_id: str, reason: str) -> tuple[int, list[str]]:
    """Mark the DAG run's parent run and its children that are still RUNNING as KILLED, tagged with the reason.

    Returns (runs closed, aliases that point at model versions of its child runs) so the caller can say
    whether anything was promoted before the run stopped.
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
    promoted = [f"{m.name}@{alias}" for m in c.search_registered_models() for alias, version in m.aliases.items()
                if ours and c.get_model_version(m.name, version).run_id in ours]
    return closed, promoted
