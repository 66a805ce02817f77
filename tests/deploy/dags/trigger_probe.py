"""Two trivial DAGs for the `greenlane trigger` test: one writes its run conf to the file the conf names
(or fails when asked to), one stays paused so the paused-DAG message can be checked."""

import json
from pathlib import Path

from airflow.sdk import dag, task


@dag(dag_id="greenlane_trigger_probe", schedule=None, catchup=False, tags=["test"])
def trigger_probe():
    @task(retries=0)
    def echo_conf(dag_run=None):
        conf = dict(dag_run.conf or {})
        if conf.get("fail"):
            raise RuntimeError("the conf asked this run to fail")
        Path(conf["out"]).write_text(json.dumps(conf, sort_keys=True))

    echo_conf()


@dag(dag_id="greenlane_trigger_paused", schedule=None, catchup=False, tags=["test"])
def trigger_paused():
    @task(retries=0)
    def noop():
        return None

    noop()


trigger_probe()
trigger_paused()
