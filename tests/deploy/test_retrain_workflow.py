""".github/workflows/retrain.yml: when it runs, and its trigger step executed for real against a local Airflow
whose `greenlane_retrain` is a stand-in that records the conf it receives (tests/deploy/dags/retrain_stub.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "retrain.yml"
SECRETS = ("GREENLANE_AIRFLOW_URL", "GREENLANE_AIRFLOW_USER", "GREENLANE_AIRFLOW_PASSWORD")


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _trigger_step(workflow: dict) -> dict:
    [job] = workflow["jobs"].values()
    [step] = [s for s in job["steps"] if "greenlane trigger" in s.get("run", "")]
    return step


def test_runs_when_task_data_or_configs_change(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert set(on["push"]["paths"]) == {"tasks/data/**", "configs/**"}
    assert "workflow_dispatch" in on


def test_credentials_come_from_github_secrets(workflow):
    step = _trigger_step(workflow)
    assert step["env"] == {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS}
    assert "--dag greenlane_retrain" in step["run"] and "--wait" in step["run"]


@pytest.mark.slow
def test_trigger_step_runs_against_airflow(workflow, local_airflow):
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    tree = subprocess.run(["git", "rev-parse", "--short=12", "HEAD:tasks/data"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    env = {
        **os.environ,
        **local_airflow.env(GREENLANE_AIRFLOW_URL=local_airflow.url),
        "GITHUB_SHA": sha,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # `greenlane` from this venv
    }
    out = subprocess.run(["bash", "-eo", "pipefail", "-c", _trigger_step(workflow)["run"]], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr + local_airflow.log_tails()
    assert json.loads(out.stdout)["state"] == "success"
    recorded = json.loads((local_airflow.home / "retrain_conf.json").read_text())
    assert recorded == {"data_version": tree, "git_sha": sha}
