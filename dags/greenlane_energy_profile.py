"""
### greenlane_energy_profile

For the current champion of each target (registry alias `champion-<target>`), sweeps
the (input tokens, output tokens) grid on a worker of the target's queue, one request
per cell with that machine's energy meter, fits the workload energy and runtime models
E(tin, tout) and runtime(tin, tout) (form chosen by cross-validated MdAPE), and logs
them to MLflow: a child run `<variant>@<target> energy-profile` with the grid CSV and
`energy_model.json`; the model version gets an `energy_profile_run_id` tag.

Targets without a champion are skipped; a target whose queue has no live worker is
recorded as "no worker for queue X". Params: the config (path, base model, targets,
overrides) and the grid (`tin`, `tout`, `repeats`; default: the config's
`benchmark.energy_grid`, else 16-512 x 8-128 tokens).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from airflow.sdk import Param, dag, get_current_context, task

# The dag-processor and workers put the bundle (this folder) on sys.path; a plain DagBag does not.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))
from greenlane_wiring import DAG_SETTINGS, QUEUES, config_params, per_queue

TOKENS = {"type": ["null", "array"], "items": {"type": "integer", "minimum": 1}, "minItems": 2}


@task
def prepare_profile() -> dict:
    from tasks.profiling import prepare_profile

    context = get_current_context()
    return prepare_profile(dict(context["params"]), context["run_id"])


@task(execution_timeout=dt.timedelta(hours=1))  # waits for a live worker up to the targets' worker_wait_s
def plan_profiles(ctx: dict, queue: str) -> list[dict]:
    from tasks.orchestration import plan_for_queue
    from tasks.profiling import champion_jobs

    return plan_for_queue(ctx, queue, QUEUES, jobs=champion_jobs(ctx))


@task(max_active_tis_per_dag=1)
def profile(ctx: dict, job: dict) -> str:
    from tasks.profiling import profile

    return profile(ctx, job)


@task(trigger_rule="all_done")  # close the parent run whatever happened; fail if a served target has no profile
def finish(ctx: dict) -> dict:
    from tasks.profiling import finish

    return finish(ctx)


@dag(
    dag_id="greenlane_energy_profile",
    schedule="@monthly",
    tags=["greenlane", "energy", "profiling"],
    doc_md=__doc__,
    params={
        **{k: v for k, v in config_params().items() if k in ("config_path", "base_model", "targets", "overrides")},
        "tin": Param(None, **TOKENS, title="Input tokens", description="e.g. [16, 64, 256, 512]; empty: the config's grid"),
        "tout": Param(None, **TOKENS, title="Output tokens", description="e.g. [8, 32, 128]; empty: the config's grid"),
        "repeats": Param(None, type=["null", "integer"], minimum=1, title="Requests per cell"),
    },
    **DAG_SETTINGS,
)
def greenlane_energy_profile():
    ctx = prepare_profile()
    per_queue(plan_profiles, profile, ctx) >> finish(ctx)


greenlane_energy_profile()
