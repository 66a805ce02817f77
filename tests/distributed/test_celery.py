"""Distributed mode for real: CeleryExecutor, PostgreSQL metadata, Redis broker, two workers on two queues.

Everything runs on 127.0.0.1 on ports picked free: postgres (initdb in a temporary
directory, as the `postgres` user when the test runs as root), redis, then
`airflow db migrate`, the benchmark pools (greenlane's own setup code), a
scheduler, a dag-processor, an api-server, and two Celery workers: one on queue
`default`, one on queue `edge`. `greenlane_optimize` is triggered through the
REST API (JWT from /auth/token) on the tiny model with three targets: `cpu` on
`default`, `edge` on `edge`, and `ghost` on a queue no worker listens to. The run
must succeed with each benchmark executed by its queue's worker, cpu and edge
promoted, and ghost skipped as "no worker for queue ghost" within its wait.
Every process is stopped by its process group in teardown.

Needs the Debian packages postgresql and redis-server (skipped without them).
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
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tasks.config import safe_name

REPO = Path(__file__).resolve().parents[2]
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
REDIS = shutil.which("redis-server")
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "greenlane_optimize"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PG_BIN is None or REDIS is None, reason="needs Debian packages postgresql and redis-server"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout_s: float, procs: dict | None = None) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if check():
            return
        for name, (proc, log) in (procs or {}).items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{tail(log)}")
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else ""


def run(cmd: list[str], env: dict) -> None:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{' '.join(cmd[:3])}: exit {out.returncode}\n{(out.stdout + out.stderr)[-3000:]}"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    """The processes of one Airflow deployment, each the leader of its own process group."""

    def __init__(self, root: Path):
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=self.root,
                                start_new_session=True)
        self.procs[name] = (proc, log)
        return proc

    def stop(self) -> None:
        for name, (proc, _) in reversed(list(self.procs.items())):  # workers and servers first, postgres last
            if proc.poll() is None:  # SIGINT: postgres' fast shutdown (SIGTERM would wait for its clients)
                os.killpg(proc.pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, (proc, _) in self.procs.items():
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def as_postgres(cmd: list[str]) -> list[str]:
    """Postgres refuses to run as root: drop to the `postgres` user (setpriv execs, so the PID stays postgres')."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd]


def start_postgres(cluster: Cluster) -> str:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="greenlane-pg-"))  # outside pytest's root-only tmp, so postgres can enter it
    cluster.pg_dir = data
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data / "db"), "-U", "airflow", "--auth=trust",
                                "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
    cluster.start("postgres", as_postgres([str(PG_BIN / "postgres"), "-D", str(data / "db"), "-p", str(port),
                                           "-h", "127.0.0.1", "-k", str(data)]), dict(os.environ))
    wait_for("postgres", lambda: port_open(port), 60, cluster.procs)
    # a second database for MLflow: three workers log at once, which a SQLite store would not take
    subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "mlflow"],
                   check=True, capture_output=True, timeout=60)
    cluster.mlflow_uri = f"postgresql+psycopg2://airflow@127.0.0.1:{port}/mlflow"
    return f"postgresql+psycopg2://airflow@127.0.0.1:{port}/postgres"


def airflow_env(root: Path, db_url: str, redis_port: int, api_port: int, tiny_home: Path) -> dict:
    secret = secrets.token_hex(16)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,  # SQLAlchemy 2.1: a bare postgresql:// means psycopg 3
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",  # the backstop if a worker vanishes after the check
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the triggered run: unpausing must not start the weekly one
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GREENLANE_QUEUES": "edge,ghost",
        "GREENLANE_HOME": str(tiny_home),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
    }


class Api:
    def __init__(self, port: int, password: str):
        self.base = f"http://127.0.0.1:{port}"
        self.token = self.call("POST", "/auth/token", {"username": "admin", "password": password}, auth=False)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, auth: bool = True):
        req = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: {err.code} {err.read()[:1000]!r}") from None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tiny_dir):
    root = tmp_path_factory.mktemp("celery")
    cl = Cluster(root)
    try:
        db_url = start_postgres(cl)
        redis_port, api_port = free_port(), free_port()
        cl.start("redis", [REDIS, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                 dict(os.environ))
        wait_for("redis", lambda: port_open(redis_port), 30, cl.procs)
        password = secrets.token_urlsafe(12)
        (root / "passwords.json").write_text(json.dumps({"admin": password}))
        env = airflow_env(root, db_url, redis_port, api_port, root / "greenlane-home")
        run([AIRFLOW, "db", "migrate"], env)
        run([sys.executable, "-c", "from tasks.orchestration import ensure_pools, served_queues; "
             "print(ensure_pools(served_queues()))"], env)  # greenlane's own setup code makes the pools
        cl.start("api-server", [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"], env)
        cl.start("scheduler", [AIRFLOW, "scheduler", "--skip-serve-logs"], env)
        cl.start("dag-processor", [AIRFLOW, "dag-processor"], env)
        for queue in ("default", "edge"):
            cl.start(f"worker-{queue}", [AIRFLOW, "celery", "worker", "--queues", queue, "--concurrency", "1",
                                         "--skip-serve-logs", "--celery-hostname", f"worker-{queue}@%h"],
                     {**env, "GREENLANE_WORKER_NAME": f"worker-{queue}"})
        wait_for("api-server", lambda: port_open(api_port), 180, cl.procs)
        cl.api = Api(api_port, password)
        cl.home = root / "greenlane-home"
        cl.tiny_dir = tiny_dir
        yield cl
    finally:
        cl.stop()
        if getattr(cl, "pg_dir", None):
            shutil.rmtree(cl.pg_dir, ignore_errors=True)


def conf_for(tiny_dir: Path, mlflow_uri: str) -> dict:
    return {
        "base_model": str(tiny_dir),
        "variants": ["baseline", "bf16"],
        "targets": {
            "cpu": {"queue": "default"},
            "edge": {"queue": "edge", "region": "QC"},
            "ghost": {"queue": "ghost", "worker_wait_s": 5},
        },
        "min_accuracy": 0, "max_accuracy_drop": 1,  # the random tiny model passes: this test is about the plumbing
        "overrides": {"eval.limit": 6, "eval.perplexity_tokens": 64, "benchmark.prompts": 2,
                      "benchmark.max_new_tokens": 4, "benchmark.repeats": 1, "benchmark.max_repeats": 1,
                      "default_target": "cpu", "mlflow.tracking_uri": mlflow_uri},
    }


@pytest.fixture(scope="module")
def finished_run(cluster):
    api = cluster.api
    wait_for("the DAG to be parsed", lambda: _dag_exists(api), 180, cluster.procs)
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf_for(cluster.tiny_dir, cluster.mlflow_uri)})
    run_id = run["dag_run_id"]
    state = {}

    def done() -> bool:
        state.update(api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"))
        return state["state"] in ("success", "failed")

    try:
        wait_for("the DAG run", done, 480, cluster.procs)
    finally:
        tis = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    if state.get("state") != "success":
        bad = [f"{t['task_id']}[{t['map_index']}]={t['state']}" for t in tis if t["state"] != "success"]
        logs = "\n".join(f"--- {n}\n{tail(log, 1500)}" for n, (_, log) in cluster.procs.items() if n != "postgres")
        pytest.fail(f"run {run_id} ended {state.get('state')}: {bad}\n{logs}")
    return run_id, tis


def _dag_exists(api: Api) -> bool:
    try:
        return api.call("GET", f"/api/v2/dags/{DAG_ID}")["dag_id"] == DAG_ID
    except AssertionError:
        return False


def test_each_benchmark_ran_on_its_targets_queue_and_worker(cluster, finished_run):
    run_id, tis = finished_run
    bench = [t for t in tis if t["task_id"].startswith("benchmark_") and t["map_index"] >= 0]
    by_task = {}
    for t in bench:
        by_task.setdefault(t["task_id"], []).append(t)
    assert sorted(by_task) == ["benchmark_default", "benchmark_edge"]  # ghost has no worker: nothing was mapped
    for task_id, queue in (("benchmark_default", "default"), ("benchmark_edge", "edge")):
        assert len(by_task[task_id]) == 2  # baseline and bf16
        assert all(t["queue"] == queue and t["state"] == "success" and t["hostname"] for t in by_task[task_id])
        assert all(t["pool"] == f"greenlane-benchmark-{queue}" for t in by_task[task_id])

    run_dir = cluster.home / "runs" / safe_name(run_id)
    results = {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("results/*/result.json")}
    assert sorted(results) == ["baseline@cpu", "baseline@edge", "bf16@cpu", "bf16@edge"]
    for name, record in results.items():
        target = record["target"]
        # the record holds the worker that really ran it, and what that machine is (not the config's claim)
        assert record["hardware"]["worker"] == ("worker-default" if target == "cpu" else "worker-edge"), name
        assert record["hardware"]["hostname"] == socket.gethostname()
        assert record["hardware"]["cpu_model"] and record["hardware"]["profile_used"] == "cpu"


def test_targets_with_a_worker_are_promoted_and_the_ghost_target_is_skipped(cluster, finished_run):
    run_id, tis = finished_run
    run_dir = cluster.home / "runs" / safe_name(run_id)
    unserved = json.loads((run_dir / "unserved-ghost.json").read_text())
    assert "no worker for queue ghost" in unserved["ghost"]
    decision = json.loads((run_dir / "decision.json").read_text())
    assert decision["targets"]["cpu"]["promoted"] and decision["targets"]["edge"]["promoted"]
    assert not decision["targets"]["ghost"]["promoted"]
    states = {t["task_id"]: t["state"] for t in tis if t["map_index"] < 0}
    assert states["benchmark_ghost"] == "skipped" and states["promote"] == "success"
    assert states["check_complete"] == "success"

    from mlflow import MlflowClient

    c = MlflowClient(cluster.mlflow_uri)
    assert c.get_model_version_by_alias("tiny-llama", "champion-edge").version
    parent = c.search_runs([c.get_experiment_by_name("greenlane-tiny-llama").experiment_id],
                           filter_string=f"tags.`greenlane.dag_run_id` = '{run_id}'")[0]
    assert "no worker for queue ghost" in parent.data.tags["greenlane.unserved.ghost"]
