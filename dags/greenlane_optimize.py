"""
### greenlane_optimize

Builds variants of a base LLM (quantized, cast, ...), benchmarks each variant on
each target for energy, latency and accuracy, turns energy into carbon, logs
everything to MLflow, and moves the `champion-<target>` alias of the registered
model to the lowest-carbon variant that passes the gates. Nothing moves when no
variant passes.

Params: `config_path` (YAML; default configs/default.yaml) and `overrides`
(dotted keys, e.g. `{"variants": ["baseline", "bf16"], "gates.max_accuracy_drop": 0.02}`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "greenlane",
    "retries": 1,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=2),
}


@dag(
    dag_id="greenlane_optimize",
    schedule="@weekly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args=DEFAULT_ARGS,
    tags=["greenlane", "llmops", "energy"],
    doc_md=__doc__,
    params={
        "config_path": Param(None, type=["null", "string"], description="YAML config; empty for configs/default.yaml"),
        "overrides": Param({}, type="object", description="Dotted config keys to override, e.g. {\"eval.limit\": 50}"),
    },
)
def greenlane_optimize():
    @task
    def prepare() -> dict:
        from tasks.pipeline import prepare

        context = get_current_context()
        params = context["params"]
        return prepare(params.get("config_path"), params.get("overrides") or {}, context["run_id"])

    @task
    def plan(ctx: dict) -> list[str]:
        from tasks.pipeline import plan

        return plan(ctx)

    @task
    def make_variant(ctx: dict, variant: str) -> str:
        from tasks.pipeline import make_variant

        return make_variant(ctx, variant)

    @task
    def plan_benchmarks(ctx: dict) -> list[dict]:
        from tasks.pipeline import plan_benchmarks

        return plan_benchmarks(ctx)

    @task(max_active_tis_per_dag=1)  # two benchmarks on one machine corrupt each other's energy figures
    def benchmark(ctx: dict, job: dict) -> str:
        from tasks.pipeline import benchmark

        return benchmark(ctx, job["variant"], job["target"])

    @task
    def promote(ctx: dict, result_files: list[str]) -> dict:
        from tasks.pipeline import promote

        return promote(ctx, list(result_files))

    ctx = prepare()
    built = make_variant.partial(ctx=ctx).expand(variant=plan(ctx))
    jobs = plan_benchmarks(ctx)
    built >> jobs
    promote(ctx, benchmark.partial(ctx=ctx).expand(job=jobs))


greenlane_optimize()
