"""Wiring the greenlane DAGs share: the trigger-form params, the tasks, the per-queue benchmark fan-out.

Imported by the DAG files (Airflow puts the dags folder on sys.path); listed in
.airflowignore because it defines no DAG itself. Like a DAG file it imports
only `airflow.sdk` and the standard library; every task body imports from
`tasks` and calls one function.

Per-queue fan-out: Airflow sets `queue` and `pool` per task, not per mapped
instance, so each queue the deployment serves (env GREENLANE_QUEUES,
comma-separated, read at parse time, so the same on every component; `default` always) gets its own mapped
task `<step>_<queue>`, run by that queue's workers and drawing from the
one-slot pool `greenlane-benchmark-<queue>` (created by `tasks.orchestration.ensure_pools`).
A `plan_*` task routes each target's jobs to its queue's task, after checking
that a live worker consumes that queue.
"""

from __future__ import annotations

import datetime as dt
import os
import re

from airflow.sdk import Param, RetryDecision, RetryPolicy, get_current_context, task

# Same parsing as tasks.orchestration.served_queues (a DAG file cannot import `tasks` at parse time).
QUEUES = list(dict.fromkeys(["default", *(q.strip() for q in os.environ.get("GREENLANE_QUEUES", "").split(",") if q.strip())]))
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class FailOnBadInput(RetryPolicy):
    """A `tasks.errors.GreenlaneError` (bad input, an unmet precondition) fails the task at once: every retry
    would give the same answer after the 30 s backoff. Matched by name, as a DAG file imports no `tasks`."""

    def evaluate(self, exception, try_number, max_tries, context=None) -> RetryDecision:
        if any(c.__module__ == "tasks.errors" and c.__name__ == "GreenlaneError" for c in type(exception).__mro__):
            return RetryDecision.fail("bad input: a retry cannot fix it")
        return RetryDecision.default()


DEFAULT_ARGS = {
    "owner": "greenlane",
    "retries": 1,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(hours=2),
    "retry_policy": FailOnBadInput(),
}
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
# What every greenlane DAG shares: created paused, no backfill, one run at a time (runs share the benchmark pools)
DAG_SETTINGS = {"start_date": START, "catchup": False, "max_active_runs": 1, "is_paused_upon_creation": True,
                "default_args": DEFAULT_ARGS}


def pool_for(queue: str) -> str:
    return f"greenlane-benchmark-{queue}"


def task_suffix(queue: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", queue)


def config_params() -> dict[str, Param]:
    """The trigger form: the config file, typed shortcuts for what people change most, then free-form overrides."""
    nullable_number = {"type": ["null", "number"], "minimum": 0}
    target = {
        "type": "object",
        "additionalProperties": True,  # any other TargetConfig field; the config validates it at prepare
        "properties": {
            "queue": {"type": "string", "pattern": NAME},
            "hardware": {"type": "string"},
            "region": {"type": "string"},
            "pue": {"type": "number", "minimum": 1},
            "worker_wait_s": {"type": "number", "minimum": 0},
        },
    }
    return {
        "config_path": Param(None, type=["null", "string"], title="Config file",
                             description="YAML config on the workers; empty for configs/default.yaml"),
        "base_model": Param(None, type=["null", "string"], title="Base model",
                            description="HF id (from the local cache), local directory, or bundled:SmolLM2-135M-Instruct; "
                                        "empty: the config's"),
        "variants": Param(None, type=["null", "array"], items={"type": "string", "pattern": NAME}, minItems=1,
                          title="Variants", description="Built-in variant names, one per line (must include baseline); "
                                                        "empty: the config's"),
        "targets": Param(None, type=["null", "object"], additionalProperties=target, minProperties=1, title="Targets",
                         description='Replaces the config\'s targets, e.g. {"cpu": {"queue": "default", "region": "QC"}, '
                                     '"jetson": {"queue": "jetson", "hardware": "jetson-orin-nano"}}; empty: the config\'s'),
        "region": Param(None, type=["null", "string"], pattern=NAME, title="Grid region (all targets)",
                        description="QC, CISO, PACE or an ISO-3 country code; empty: each target's own"),
        "max_accuracy_drop": Param(None, type=["null", "number"], minimum=0, maximum=1, title="Gate: max accuracy drop",
                                   description="Largest allowed fall vs the baseline, fraction (0.02 = 2 points)"),
        "min_accuracy": Param(None, type=["null", "number"], minimum=0, maximum=1, title="Gate: min accuracy"),
        "max_latency_p95_ms": Param(None, **nullable_number, title="Gate: max p95 latency, ms"),
        "overrides": Param({}, type="object", title="Overrides",
                           description='Dotted config keys, applied last, e.g. {"eval.limit": 50}'),
    }


@task
def prepare() -> dict:
    from tasks.config import params_config_file
    from tasks.pipeline import prepare

    context = get_current_context()
    return prepare(params_config_file(dict(context["params"]), context["run_id"]), None, context["run_id"])


@task
def plan(ctx: dict) -> list[str]:
    from tasks.pipeline import plan

    return plan(ctx)


@task
def make_variant(ctx: dict, variant: str) -> str:
    from tasks.pipeline import make_variant

    return make_variant(ctx, variant)


@task(execution_timeout=dt.timedelta(hours=1))  # waits for a live worker up to the targets' worker_wait_s
def plan_benchmarks(ctx: dict, queue: str) -> list[dict]:
    from tasks.orchestration import plan_for_queue
    from tasks.pipeline import plan_benchmarks

    return plan_for_queue(ctx, queue, QUEUES, jobs=plan_benchmarks(ctx))


@task(max_active_tis_per_dag=1)
def benchmark(ctx: dict, job: dict) -> str:
    from tasks.pipeline import benchmark

    return benchmark(ctx, job["variant"], job["target"])


@task(trigger_rule="all_done")  # a target whose benchmarks failed or had no worker must not stop the others
def promote(ctx: dict) -> dict:
    from tasks.errors import require_prepared
    from tasks.pipeline import promote_available

    return promote_available(require_prepared(ctx))


@task(trigger_rule="all_done")  # after promote: a failed benchmark fails the run, the others still promoted
def check_complete(ctx: dict) -> dict:
    from tasks.errors import require_prepared
    from tasks.pipeline import check_complete

    return check_complete(require_prepared(ctx))


def per_queue(plan_step, step, ctx) -> list:
    """Per served queue: `plan_step` picks the jobs for it, a mapped `step` runs them on it, in its pool."""
    out = []
    for q in QUEUES:
        jobs = plan_step.override(task_id=f"{plan_step.function.__name__}_{task_suffix(q)}")(ctx, q)
        out.append(step.override(task_id=f"{step.function.__name__}_{task_suffix(q)}", queue=q, pool=pool_for(q))
                   .partial(ctx=ctx).expand(job=jobs))
    return out


def benchmark_gate_promote(ctx) -> None:
    """Build the variants, benchmark each on each target's queue, promote per target: optimize and retrain."""
    built = make_variant.partial(ctx=ctx).expand(variant=plan(ctx))
    benches = per_queue(plan_benchmarks, benchmark, ctx)
    for b in benches:
        built >> b
    benches >> promote(ctx) >> check_complete(ctx)
