"""Running a DAG in-process with embedded defaults: SQLite Airflow and SQLite MLflow under one home.

`airflow dag.test()` executes every task in this process, so one laptop runs
the same DAG a scheduler would. The Airflow home and its metadata DB live
under the greenlane home and are migrated on first use.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tasks.config import REPO_ROOT, greenlane_home
from tasks.errors import GreenlaneError

DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_env(home: Path) -> dict[str, str]:
    """Settings for an embedded Airflow; applied before airflow is imported."""
    airflow_home = home / "airflow"
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        # ERROR: a failing task still prints its traceback, but dag.test's once-a-second
        # "No tasks to run" warnings while a retry waits do not flood the progress display.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_OFFLINE": "1",
        "GREENLANE_HOME": str(home),
    }


def configure_airflow(home: Path | None = None) -> Path:
    home = home or greenlane_home()
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_env(home))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-variant "Loading weights" bars would interleave with the progress lines
    return home


def migrate_db() -> None:
    """Migrate the metadata DB and create the benchmark pools the DAGs draw from (one per served queue)."""
    from airflow.utils.db import upgradedb

    from tasks.orchestration import ensure_pools, served_queues

    upgradedb()
    ensure_pools(served_queues())


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise GreenlaneError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise GreenlaneError(f"no DAG {dag_id!r} in {DAGS_FOLDER}; found: {', '.join(bag.dag_ids)}")
    return dag


def run_dag(dag_id: str, conf: dict) -> tuple[str, str]:
    """Migrate if needed, run the DAG with `conf`; return (run_id, state)."""
    configure_airflow()
    migrate_db()
    dag = load_dag(dag_id)
    logging.getLogger("airflow").setLevel(logging.WARNING)
    dagrun = dag.test(run_conf=conf)
    return dagrun.run_id, str(dagrun.state)
