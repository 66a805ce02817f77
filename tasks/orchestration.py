"""Where the benchmarks run: queues, pools, live workers, and the targets no worker served.

A target names the Airflow queue whose workers run its benchmarks
(`targets.<name>.queue`). The DAGs create one benchmark task per queue the
deployment serves (env `GREENLANE_QUEUES`, comma-separated, `default` always
included), because Airflow sets `queue` per task, not per mapped instance. Set
it identically on every Airflow component: the dag-processor builds the tasks
from it and each worker re-parses the DAG file to find the task it runs. Each
of those tasks draws from its own one-slot pool `greenlane-benchmark-<queue>`
(`ensure_pools`): two benchmarks on one machine corrupt each other's energy
figures, so they never overlap, across DAGs too.

Before a queue's benchmarks start, `plan_for_queue` asks Celery which workers
consume that queue and waits up to its targets' `worker_wait_s` for one. A
target whose queue has no live worker is recorded as "no worker for queue X"
(run directory `unserved-<queue>.json`, a tag on the MLflow parent run) and is
not benchmarked, so its champion does not move while the other targets go on;
a worker lost after the check leaves its task queued until Airflow's
`[scheduler] task_queued_timeout` fails it, and promotion still runs for the
rest. With any other executor (LocalExecutor, `dag.test()`) every task runs on the
local machine, so every queue counts as served by it.

What a worker reports about itself is `tasks.carbon.detect.worker_report`; the
DAG steps that promote and check completeness are in `tasks.pipeline`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from tasks.config import load_ctx_config

log = logging.getLogger("greenlane")

QUEUES_ENV = "GREENLANE_QUEUES"
POOL_PREFIX = "greenlane-benchmark-"  # the DAG files build the same names (they cannot import this package)


def served_queues(value: str | None = None) -> list[str]:
    """The queues the DAGs create benchmark tasks for, from `GREENLANE_QUEUES`; `default` always included."""
    raw = os.environ.get(QUEUES_ENV, "") if value is None else value
    return list(dict.fromkeys(["default", *(q.strip() for q in raw.split(",") if q.strip())]))


def pool_name(queue: str) -> str:
    return f"{POOL_PREFIX}{queue}"


def ensure_pools(queues: list[str], slots: int = 1) -> list[str]:
    """Create the missing benchmark pools in the Airflow metadata DB; an existing pool keeps its slots."""
    from airflow.models.pool import Pool

    created = []
    for queue in queues:
        name = pool_name(queue)
        if Pool.get_pool(name) is None:
            Pool.create_or_update_pool(name, slots, f"greenlane: benchmarks on queue {queue!r}, one at a time per machine",
                                       include_deferred=False)
            created.append(name)
    return created


def uses_celery() -> bool:
    from airflow.configuration import conf

    return "celery" in conf.get("core", "executor", fallback="").lower()


def celery_queues(timeout_s: float = 2.0) -> dict[str, list[str]]:
    """Queue -> names of the live Celery workers consuming it (empty when no worker answers)."""
    from airflow.providers.celery.executors.celery_executor_utils import app

    answers = app.control.inspect(timeout=timeout_s).active_queues() or {}
    out: dict[str, list[str]] = {}
    for worker, queues in answers.items():
        for q in queues:
            out.setdefault(q["name"], []).append(worker)
    return out


def live_workers(queues: list[str], wait_s: dict[str, float], poll_s: float = 3.0) -> dict[str, list[str]]:
    """Queue -> live workers, waiting up to `wait_s[queue]` seconds for each queue to get one."""
    if not uses_celery():
        return {q: [f"local:{socket.gethostname()}"] for q in queues}
    t0 = time.monotonic()
    while True:
        found = celery_queues()
        missing = [q for q in queues if not found.get(q) and time.monotonic() - t0 < wait_s.get(q, 0)]
        if not missing:
            return {q: sorted(found.get(q, [])) for q in queues}
        log.info("waiting for a worker on queue(s) %s (%.0f s so far)", ", ".join(missing), time.monotonic() - t0)
        time.sleep(poll_s)


def plan_for_queue(ctx: dict, queue: str, dag_queues: list[str], jobs: list[dict]) -> list[dict]:
    """Those of `jobs` (`{target, ...}`) that the DAG's task for `queue` runs.

    Under Celery: the jobs of the targets on `queue`, once a live worker consumes it (waiting up to their
    `worker_wait_s`); none, recorded as unserved, when no worker shows up. The task of the first queue also
    records the targets whose queue has no task in this DAG. Any other executor runs everything locally,
    so the first queue's task takes every job.
    """
    cfg = load_ctx_config(ctx)
    first = queue == dag_queues[0]
    if not uses_celery():  # one machine runs everything: the queue decides nothing
        return list(jobs) if first else []
    unserved = {}
    if first:
        for name, t in cfg.targets.items():
            if t.queue not in dag_queues:
                unserved[name] = (f"no worker for queue {t.queue}: the DAG has no task for it (add it to {QUEUES_ENV} "
                                  f"on every Airflow component; now {','.join(dag_queues)})")
    mine = [name for name, t in cfg.targets.items() if t.queue == queue]
    workers = []
    if mine:
        wait = max(cfg.targets[name].worker_wait_s for name in mine)
        workers = live_workers([queue], {queue: wait})[queue]
        if workers:
            log.info("queue %s: target(s) %s on worker(s) %s", queue, ", ".join(mine), ", ".join(workers))
        else:
            unserved.update({name: f"no worker for queue {queue} (waited {wait:.0f} s); target {name} not benchmarked"
                             for name in mine})
    record_unserved(ctx, queue, unserved)
    return [j for j in jobs if j["target"] in mine] if workers else []


def record_unserved(ctx: dict, queue: str, unserved: dict[str, str]) -> None:
    """Write `unserved-<queue>.json` in the run directory and tag the parent run, so the outcome is visible."""
    from tasks.tracking import runs

    for target, why in unserved.items():
        log.warning("target %s: %s", target, why)
    (Path(ctx["run_dir"]) / f"unserved-{queue}.json").write_text(json.dumps(unserved, indent=2))
    if unserved:
        runs.log_record(ctx["tracking_uri"], ctx["parent_run_id"], metrics={}, params={},
                        tags={f"greenlane.unserved.{t}": why for t, why in unserved.items()})


def unserved_targets(ctx: dict) -> dict[str, str]:
    """Target -> why it was not benchmarked, from every queue's `unserved-<queue>.json` of this run."""
    out = {}
    for path in sorted(Path(ctx["run_dir"]).glob("unserved-*.json")):
        out.update(json.loads(path.read_text()))
    return out
