"""Where the benchmarks run: queues, live workers, pools, and what a worker says about itself.

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
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from tasks.config import GreenlaneConfig, greenlane_home, load_config

log = logging.getLogger("greenlane")

QUEUES_ENV = "GREENLANE_QUEUES"
WORKER_NAME_ENV = "GREENLANE_WORKER_NAME"
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


def plan_for_queue(ctx: dict, queue: str, dag_queues: list[str], jobs: list[dict] | None = None) -> list[dict]:
    """The jobs (`{target, ...}`, default: every variant x target) that the DAG's task for `queue` runs.

    Under Celery: the jobs of the targets on `queue`, once a live worker consumes it (waiting up to their
    `worker_wait_s`); none, recorded as unserved, when no worker shows up. The task of the first queue also
    records the targets whose queue has no task in this DAG. Any other executor runs everything locally,
    so the first queue's task takes every job.
    """
    from tasks.pipeline import load_ctx_config, plan_benchmarks

    cfg = load_ctx_config(ctx)
    jobs = plan_benchmarks(ctx) if jobs is None else jobs
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
    out = {}
    for path in sorted(Path(ctx["run_dir"]).glob("unserved-*.json")):
        out.update(json.loads(path.read_text()))
    return out


def result_files(ctx: dict) -> list[str]:
    """The result files the benchmarks of this DAG run wrote (a failed or skipped one wrote none)."""
    return sorted(str(p) for p in (Path(ctx["run_dir"]) / "results").glob("*/result.json"))


def promote_available(ctx: dict) -> dict:
    """Promote per target from whatever results exist; a target without its baseline result moves nothing."""
    from tasks.pipeline import promote

    return promote(ctx, result_files(ctx))


def check_complete(ctx: dict) -> dict[str, str]:
    """Raise if a served target is missing results (a benchmark failed); returns the unserved targets."""
    from tasks.errors import GreenlaneError
    from tasks.pipeline import _safe, plan_benchmarks

    unserved = unserved_targets(ctx)
    have = {Path(f).parent.name for f in result_files(ctx)}
    missing = [f"{j['variant']}@{j['target']}" for j in plan_benchmarks(ctx)
               if j["target"] not in unserved and _safe(f"{j['variant']}@{j['target']}") not in have]
    for target, why in unserved.items():
        log.warning("target %s was not benchmarked: %s", target, why)
    if missing:
        raise GreenlaneError(f"no result for {', '.join(missing)}: those benchmarks failed (see their task logs); "
                             f"the other targets were promoted")
    return unserved


def worker_report() -> dict:
    """What this machine is, as the worker running the task sees it (not what the config claims)."""
    from tasks.carbon.detect import detect

    found = detect()
    return {
        "hostname": socket.gethostname(),
        "worker": os.environ.get(WORKER_NAME_ENV) or socket.gethostname(),
        "cpu_model": found.cpu_model,
        "gpus": list(found.gpu_names),
        "jetson_model": found.jetson_model,
        "detected_profile": found.hardware,
        "detected_evidence": found.evidence,
    }


# --- DAG params -> config ---------------------------------------------------------------------------------

GATE_PARAMS = ("max_accuracy_drop", "min_accuracy", "max_latency_p95_ms")


def config_from_params(params: dict) -> GreenlaneConfig:
    """The config a triggered run uses: the YAML, then the typed params, then the free-form `overrides`."""
    base = load_config(params.get("config_path"), None)
    raw = base.model_dump(mode="json")
    if params.get("base_model"):
        raw["base_model"] = params["base_model"]
    if params.get("variants"):
        raw["variants"] = list(params["variants"])
    if params.get("targets"):  # replaces the config's targets: the form says exactly where the run goes
        raw["targets"] = {name: dict(t) for name, t in params["targets"].items()}
        if raw.get("default_target") not in raw["targets"]:
            raw["default_target"] = next(iter(raw["targets"]))
    if params.get("region"):
        for target in raw["targets"].values():
            target["region"] = params["region"]
    for gate in GATE_PARAMS:
        if params.get(gate) is not None:
            raw.setdefault("gates", {})[gate] = params[gate]
    from tasks.config import config_from_dict, parse_overrides

    merged = _merge(raw, parse_overrides(params.get("overrides") or {}))
    return config_from_dict(merged, origin="DAG params")


def params_config_file(params: dict, dag_run_id: str) -> str:
    """Validate the params and write the config they describe into the run directory; returns its path."""
    import yaml

    from tasks.pipeline import _safe

    cfg = config_from_params(params)
    run_dir = greenlane_home() / "runs" / _safe(dag_run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "params-config.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return str(path)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
