"""A real Airflow 3 on 127.0.0.1 for the `greenlane trigger` tests: what `airflow standalone` runs, started by hand.

`airflow standalone` binds the api-server to every interface and starts the scheduler's and
triggerer's log servers on fixed ports (8793/8794), which collide on a shared machine; so this
starts the components itself: `db migrate`, `api-server --host 127.0.0.1`, `scheduler
--skip-serve-logs`, `dag-processor`. No triggerer: the probe DAGs never defer. SQLite +
LocalExecutor, simple auth with a password file written here (standalone would generate one
into AIRFLOW_HOME). Every process gets its own process group and is stopped by it at teardown.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
AIRFLOW = Path(sys.executable).parent / "airflow"
STARTUP_TIMEOUT_S = 420  # migrate + first DAG parse on a busy 2-core machine


@dataclass
class LocalAirflow:
    url: str
    user: str
    password: str
    home: Path
    logs: dict[str, Path]

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for `greenlane trigger` against this server."""
        return {"GREENLANE_AIRFLOW_USER": self.user, "GREENLANE_AIRFLOW_PASSWORD": self.password, **extra}

    def log_tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {name}\n{path.read_text(errors='replace')[-chars:]}" for name, path in self.logs.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _airflow_env(home: Path, port: int, password_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    url = f"http://127.0.0.1:{port}"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{url}/execution/",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="ci:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(password_file),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__API__BASE_URL=url,
        # one secret for every component: the scheduler signs task tokens the api-server checks
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
        HF_HUB_OFFLINE="1",
    )
    return env


def _get_json(url: str, token: str | None = None, payload: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(payload).encode() if payload is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as resp:
        return json.loads(resp.read())


def _wait_until_ready(server: LocalAirflow, procs: dict[str, subprocess.Popen], dag_ids: list[str]) -> None:
    """Poll until the API answers, a token is issued and every DAG is parsed; fail fast if a component died."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        dead = {name: p.returncode for name, p in procs.items() if p.poll() is not None}
        if dead:
            pytest.fail(f"Airflow component(s) exited during startup: {dead}\n{server.log_tails()}")
        try:
            token = _get_json(f"{server.url}/auth/token", payload={"username": server.user, "password": server.password})[
                "access_token"
            ]
            for dag_id in dag_ids:
                _get_json(f"{server.url}/api/v2/dags/{dag_id}", token)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError) as err:
            last_error = repr(err)
        time.sleep(2)
    pytest.fail(f"Airflow not ready after {STARTUP_TIMEOUT_S} s (last error: {last_error})\n{server.log_tails()}")


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


@pytest.fixture(scope="session")
def local_airflow(tmp_path_factory) -> LocalAirflow:
    home = tmp_path_factory.mktemp("airflow-home")
    shutil.copytree(HERE / "dags", home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    (home / "logs").mkdir()
    password = secrets.token_urlsafe(16)
    password_file = home / "passwords.json"
    password_file.write_text(json.dumps({"ci": password}))
    port = _free_port()
    env = _airflow_env(home, port, password_file)

    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
    }
    logs = {name: home / "logs" / f"{name}.out" for name in commands}
    procs: dict[str, subprocess.Popen] = {}
    server = LocalAirflow(url=f"http://127.0.0.1:{port}", user="ci", password=password, home=home, logs=logs)
    try:
        for name, args in commands.items():
            with open(logs[name], "w") as log:
                procs[name] = subprocess.Popen(
                    [AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        _wait_until_ready(server, procs, ["greenlane_trigger_probe", "greenlane_trigger_paused", "greenlane_retrain"])
        yield server
    finally:
        _stop(procs)
