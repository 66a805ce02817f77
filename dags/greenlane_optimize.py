"""
### greenlane_optimize

Builds variants of a base LLM (quantized, cast, ...), benchmarks each variant on
each target for energy, latency and accuracy, turns energy into carbon, logs
everything to MLflow, and moves the `champion-<target>` alias of the registered
model to the lowest-carbon variant that passes the gates. Nothing moves when no
variant passes.

Each target's benchmarks run on its Airflow queue (`targets.<name>.queue`), one at
a time per queue (pool `greenlane-benchmark-<queue>`). A target whose queue has no
live worker within `worker_wait_s` is skipped ("no worker for queue X", tagged on the
MLflow parent run) and its champion does not move; the other targets go on.

Params: `config_path` (YAML; default configs/default.yaml), typed shortcuts (base
model, variants, targets, region, gates) and free-form `overrides` (dotted keys,
e.g. `{"eval.limit": 50}`), applied in that order.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.sdk import dag

# The dag-processor and workers put the bundle (this folder) on sys.path; a plain DagBag does not.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))
from greenlane_wiring import DAG_SETTINGS, benchmark_gate_promote, config_params, prepare


@dag(
    dag_id="greenlane_optimize",
    schedule="@weekly",
    tags=["greenlane", "llmops", "energy"],
    doc_md=__doc__,
    params=config_params(),
    **DAG_SETTINGS,
)
def greenlane_optimize():
    benchmark_gate_promote(prepare())


greenlane_optimize()
