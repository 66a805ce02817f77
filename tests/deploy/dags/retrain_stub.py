"""Stand-in for greenlane_retrain with the same id, for running .github/workflows/retrain.yml's trigger step for
real: it records the conf it was triggered with in AIRFLOW_HOME/retrain_conf.json. Unpaused at creation, as
the deployed DAG is once someone has switched it on."""

import json
import os
from pathlib import Path

from airflow.sdk import dag, task


@dag(dag_id="greenlane_retrain", schedule=None, catchup=False, is_paused_upon_creation=False, tags=["test"])
def retrain_stub():
    @task(retries=0)
    def record_conf(dag_run=None):
        Path(os.environ["AIRFLOW_HOME"], "retrain_conf.json").write_text(json.dumps(dag_run.conf, sort_keys=True))

    record_conf()


retrain_stub()
