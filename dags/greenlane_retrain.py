"""
### greenlane_retrain

LoRA-tunes the base model on the task data, then runs greenlane_optimize's path on
the tuned model: build the variants, benchmark each on each target's queue, gate
against the tuned baseline, move `champion-<target>` to the lowest-carbon passing variant.

Triggered from CI with a conf payload, e.g. `{"data_version": "2026-11-23", "git_sha": "b05c5c5"}`
(`greenlane trigger --dag greenlane_retrain --conf ...`), recorded as params and tags of
the MLflow parent run; or by an update of the `greenlane_task_data` asset (a data
pipeline's outlet, or `POST /api/v2/assets/events`), whose event extra may carry the same keys.

Params: those of greenlane_optimize, plus `data_version`, `git_sha` and `lora` (the
`lora` method's settings, e.g. `{"steps": 60, "r": 8}`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.sdk import Asset, Param, dag, get_current_context, task

# The dag-processor and workers put the bundle (this folder) on sys.path; a plain DagBag does not.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))
from greenlane_wiring import DAG_SETTINGS, benchmark_gate_promote, config_params

TASK_DATA = Asset("greenlane_task_data")


@task
def prepare_retrain() -> dict:
    from tasks.retrain import prepare_retrain

    context = get_current_context()
    events = context.get("triggering_asset_events") or {}
    extras = [dict(e.extra or {}) for evs in events.values() for e in evs]
    return prepare_retrain(dict(context["params"]), context["run_id"], extras)


@task
def tune(ctx: dict) -> dict:
    from tasks.retrain import tune

    return tune(ctx)


@dag(
    dag_id="greenlane_retrain",
    schedule=TASK_DATA,
    tags=["greenlane", "llmops", "energy", "retrain"],
    doc_md=__doc__,
    params={
        "data_version": Param(None, type=["null", "string"], maxLength=200, title="Data version",
                              description="Which task data this is (from CI), recorded on the MLflow parent run"),
        "git_sha": Param(None, type=["null", "string"], pattern="^[0-9a-fA-F]{7,40}$", title="Git commit",
                         description="Commit that changed the data or config (from CI)"),
        "lora": Param({}, type="object", title="LoRA settings",
                      properties={"steps": {"type": "integer", "minimum": 1}, "r": {"type": "integer", "minimum": 1},
                                  "lr": {"type": "number", "exclusiveMinimum": 0},
                                  "batch_size": {"type": "integer", "minimum": 1}},
                      description='Settings of the `lora` method, e.g. {"steps": 60, "r": 8}'),
        **config_params(),
    },
    **DAG_SETTINGS,
)
def greenlane_retrain():
    benchmark_gate_promote(tune(prepare_retrain()))


greenlane_retrain()
