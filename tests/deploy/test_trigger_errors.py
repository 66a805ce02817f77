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


@pytest.mark.parametrize("url, host", [
    ("http://airflow.example.org:8080", "airflow.example.org"),
    ("http://10.0.0.5:8080", "10.0.0.5"),
    ("http://[2001:db8::1]:8080", "2001:db8::1"),
    ("http://localhost.example.org", "localhost.example.org"),
])
def test_plain_http_to_another_host_is_refused(cli, url, host):
    out = cli("trigger", "--url", url, env=CREDS)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"greenlane: error: refusing plain http to {host}: the Airflow password would cross the network unencrypted; "
        f"use https:// (or an SSH tunnel to 127.0.0.1), or pass --insecure"
    )


def test_not_an_http_url_is_refused(cli):
    out = cli("trigger", "--url", "file:///etc/passwd", env=CREDS)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "greenlane: error: --url 'file:///etc/passwd' is not an http(s) URL; pass e.g. https://airflow.example.org"
    )


@pytest.mark.parametrize("url, insecure", [
    ("http://127.0.0.1:8080", False), ("http://127.1.2.3", False), ("http://localhost:8080", False),
    ("http://LOCALHOST", False), ("http://[::1]:8080", False), ("http://[::ffff:127.0.0.1]", False),
    ("https://airflow.example.org", False), ("http://airflow.example.org", True),
])
def test_loopback_https_and_insecure_pass_the_check(url, insecure):
    from tasks.commands.trigger import check_url

    check_url(url, insecure=insecure)  # no GreenlaneError


def test_insecure_lets_plain_http_through(cli):
    # 0.0.0.0 is not a loopback address, yet on Linux a connection to it lands on this machine's closed port
    url = _closed_port_url().replace("127.0.0.1", "0.0.0.0")
    out = cli("trigger", "--url", url, env=CREDS)
    assert out.returncode == 2 and "refusing plain http to 0.0.0.0" in out.stderr
    out = cli("trigger", "--url", url, "--insecure", env=CREDS)
    assert out.returncode == 2
    assert out.stderr.strip().startswith(f"greenlane: error: cannot reach Airflow at {url}: connection refused")
