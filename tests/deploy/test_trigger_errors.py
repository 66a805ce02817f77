"""`greenlane trigger` input errors that need no server: one line naming the problem, exit code 2."""

import socket

import pytest

CREDS = {"GREENLANE_AIRFLOW_USER": "ci", "GREENLANE_AIRFLOW_PASSWORD": "x"}


def _closed_port_url() -> str:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    "conf, expected",
    [
        ('{"data_version": "v3",}', "--conf is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 23"),
        ('["v3"]', "--conf must be a JSON object ({...}), got list"),
    ],
)
def test_bad_conf_names_the_problem(cli, conf, expected):
    out = cli("trigger", "--conf", conf, "--url", "http://127.0.0.1:1", env=CREDS)
    assert out.returncode == 2
    assert out.stderr.strip() == f"greenlane: error: {expected}"


def test_missing_credentials_name_the_variables(cli):
    env = {"GREENLANE_AIRFLOW_USER": "", "GREENLANE_AIRFLOW_PASSWORD": ""}
    out = cli("trigger", "--url", "http://127.0.0.1:1", env=env)
    assert out.returncode == 2
    assert "set GREENLANE_AIRFLOW_USER and GREENLANE_AIRFLOW_PASSWORD" in out.stderr


def test_connection_refused_names_the_url(cli):
    url = _closed_port_url()
    out = cli("trigger", "--url", url, env=CREDS)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"greenlane: error: cannot reach Airflow at {url}: connection refused; is the api-server running and is --url right?"
    )


def test_url_is_required(cli):
    out = cli("trigger", env={**CREDS, "GREENLANE_AIRFLOW_URL": ""})
    assert out.returncode == 2 and "no Airflow URL: pass --url" in out.stderr
