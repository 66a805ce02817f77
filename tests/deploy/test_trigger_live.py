"""`greenlane trigger` against a real Airflow 3 api-server, scheduler and dag-processor on 127.0.0.1.

The probe DAG writes its run conf to the file the conf names, so a passing test shows the conf
travelled CLI -> REST API -> scheduler -> task. Errors are checked for their one-line message
and exit code: 2 for something the user fixes (credentials, DAG id, URL, conf), 1 for a run that
failed.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

WAIT = ["--wait", "--poll-interval", "2", "--timeout", "300"]


def _error_line(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.startswith("greenlane: error:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_conf_arrives_and_wait_reports_success(cli, local_airflow, tmp_path):
    out_file = tmp_path / "conf.json"
    conf = {"data_version": "2026-11-23", "git_sha": "0123abc", "out": str(out_file)}
    out = cli("trigger", "--dag", "greenlane_trigger_probe", "--conf", json.dumps(conf), "--url", local_airflow.url,
              "--unpause", *WAIT, env=local_airflow.env(), timeout=400)
    assert out.returncode == 0, out.stderr + local_airflow.log_tails()
    result = json.loads(out.stdout)
    assert result["state"] == "success" and result["dag_id"] == "greenlane_trigger_probe"
    assert json.loads(out_file.read_text()) == conf


def test_failed_run_exits_1_and_names_the_task(cli, local_airflow, tmp_path):
    conf = {"fail": True, "out": str(tmp_path / "never.json")}
    out = cli("trigger", "--dag", "greenlane_trigger_probe", "--conf", json.dumps(conf), "--url", local_airflow.url,
              "--unpause", *WAIT, env=local_airflow.env(), timeout=400)
    assert out.returncode == 1, out.stderr + local_airflow.log_tails()
    line = _error_line(out)
    assert "finished in state 'failed'" in line and "failed tasks: echo_conf" in line
    assert json.loads(out.stdout)["state"] == "failed"


def test_paused_dag_is_refused_without_unpause(cli, local_airflow):
    out = cli("trigger", "--dag", "greenlane_trigger_paused", "--url", local_airflow.url, env=local_airflow.env())
    assert out.returncode == 2
    assert "DAG 'greenlane_trigger_paused' is paused" in _error_line(out) and "--unpause" in out.stderr


def test_unknown_dag_says_which(cli, local_airflow):
    out = cli("trigger", "--dag", "greenlane_nope", "--url", local_airflow.url, env=local_airflow.env())
    assert out.returncode == 2
    assert "DAG 'greenlane_nope' not found" in _error_line(out)


def test_wrong_password_says_credentials(cli, local_airflow):
    env = local_airflow.env(GREENLANE_AIRFLOW_PASSWORD="wrong")
    out = cli("trigger", "--dag", "greenlane_trigger_probe", "--url", local_airflow.url, env=env)
    assert out.returncode == 2
    line = _error_line(out)
    assert "rejected the credentials of user 'ci' (401)" in line and "GREENLANE_AIRFLOW_PASSWORD" in line


def test_api_server_health_endpoint_of_the_compose_file_needs_no_token(local_airflow):
    """docker-compose.yml's api-server healthcheck curls /api/v2/version without credentials."""
    import urllib.request

    with urllib.request.urlopen(f"{local_airflow.url}/api/v2/version", timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["version"] == "3.3.2"
