"""Tracking outages and a read-only store (issue 15): a bounded wait, one line naming the server, nothing lost.

A real `mlflow server` on 127.0.0.1 (SQLite under tmp_path) is killed by PID after a benchmark has measured
(a stand-in measurement: seconds instead of minutes) and before it logs; the task fails with one line naming
the server; the server restarts on the same store and port; the retried task logs the saved record without
measuring again, into the same child run; promotion then moves the alias to that run's version and no run is
left RUNNING. A read-only MLflow store fails `greenlane run` at load with exit 2 and one line, and moves nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from records import make_record

from tasks.errors import GreenlaneError
from tasks.tracking.outage import HTTP_ENV, OURS_ENV, TrackingUnavailable, apply_http_budget, tracking_errors

REPO = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).parent / "mlflow")
# A quick benchmark on the tiny model, and a small retry budget so the dead server fails a call in seconds.
FAST = {"eval.limit": 4, "eval.perplexity_tokens": 32, "benchmark.prompts": 2, "benchmark.max_new_tokens": 3,
        "benchmark.repeats": 1, "variants": ["baseline"], "gates.min_accuracy": 0, "gates.max_accuracy_drop": 1,
        "gates.min_top1_agreement": None, "targets.cpu.energy_meter": "estimate",
        "mlflow.http_max_retries": 2, "mlflow.http_backoff_factor": 1, "mlflow.http_timeout_s": 5}


@pytest.fixture(autouse=True)
def restore_http_env():
    """apply_http_budget writes os.environ (as it must for MLflow to read it): put it back for later tests."""
    names = [var for var, _ in HTTP_ENV.values()] + [OURS_ENV]
    before = {n: os.environ.get(n) for n in names}
    yield
    for n, v in before.items():
        if v is None:
            os.environ.pop(n, None)
        else:
            os.environ[n] = v


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    """`mlflow server` on `db`; its own process group, so one killpg stops it and its uvicorn workers."""
    proc = subprocess.Popen([MLFLOW, "server", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
                            # no job runner process: the server starts faster
                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    kill_server(proc)
    raise AssertionError(f"mlflow server did not start: {log.read_text()[-2000:]}")


def kill_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


# --- the retry budget ------------------------------------------------------------------------------------------

def test_the_config_sets_mlflow_http_retries_unless_the_user_did():
    from tasks.config import MlflowConfig

    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "77"}  # the user's
    applied = apply_http_budget(MlflowConfig(http_max_retries=4, http_backoff_factor=3), env)
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "4" and env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "3"
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77" and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in applied
    apply_http_budget(MlflowConfig(http_max_retries=1), env)  # a later config changes what greenlane set, only that
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1" and env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"


def test_bad_retry_settings_fail_at_load():
    from tasks.config import load_config

    for bad in ("mlflow.http_max_retries=11", "mlflow.http_backoff_factor=0.5", "mlflow.http_timeout_s=0"):
        with pytest.raises(GreenlaneError, match=bad.split("=")[0].removeprefix("mlflow.")):
            load_config(None, [bad])


def test_a_dead_server_fails_a_call_within_the_budget_with_one_line():
    from tasks.config import MlflowConfig
    from tasks.tracking import runs

    port = free_port()  # nothing listens: connection refused
    apply_http_budget(MlflowConfig(http_max_retries=2, http_backoff_factor=1, http_timeout_s=5))
    call = tracking_errors(lambda ctx: runs.find_run(ctx["tracking_uri"], "0", "k"))
    t0 = time.monotonic()
    with pytest.raises(TrackingUnavailable) as err:
        call({"tracking_uri": f"http://127.0.0.1:{port}"})
    elapsed = time.monotonic() - t0
    message = str(err.value)
    assert "\n" not in message
    assert f"MLflow tracking server http://127.0.0.1:{port} unreachable after 3 tries" in message
    assert "Connection refused" in message, message
    assert err.value.__suppress_context__  # no chained urllib3 pages under it
    assert 2 <= elapsed < 10, elapsed  # the sleeps: 0, then 2 s + up to 1 s jitter; MLflow's defaults: ~250 s


# --- the record reused on retry ----------------------------------------------------------------------------------

def test_a_saved_record_is_reused_only_by_an_unfinished_try_of_the_same_run_and_variant(tmp_path):
    from tasks import saved_record
    from tasks.variants import METADATA

    variant_dir, out = tmp_path / "variant", tmp_path / "out"
    variant_dir.mkdir()
    out.mkdir()
    (variant_dir / METADATA).write_text('{"name": "baseline", "chain": []}')
    ident = saved_record.identity("run-1", "baseline", "cpu", variant_dir)
    assert saved_record.reusable(out, ident) is None  # nothing measured yet
    record = make_record("baseline", with_carbon=False)
    saved_record.save(out, record, ident)
    assert saved_record.reusable(out, ident) == record
    assert saved_record.reusable(out, saved_record.identity("run-2", "baseline", "cpu", variant_dir)) is None
    assert saved_record.reusable(out, saved_record.identity("run-1", "baseline", "gpu", variant_dir)) is None
    (variant_dir / METADATA).write_text('{"name": "baseline", "chain": [], "rebuilt": true}')  # a changed variant
    assert saved_record.reusable(out, saved_record.identity("run-1", "baseline", "cpu", variant_dir)) is None
    (variant_dir / METADATA).write_text('{"name": "baseline", "chain": []}')
    (out / saved_record.DONE_FILE).write_text("{}")  # the try finished: a re-run measures again
    assert saved_record.reusable(out, ident) is None
    (out / saved_record.DONE_FILE).unlink()
    (out / saved_record.RECORD_FILE).write_text('{"variant": "baseli')  # killed mid-write by an older version
    assert saved_record.reusable(out, ident) is None


def test_server_killed_mid_run_then_restarted(tiny_dir, tmp_path, monkeypatch, caplog):
    """Killed after the benchmark measured, before it logged: the task fails with one line naming the server;
    after a restart the retried task logs the same record in the same child run, and promotion completes."""
    from tasks import pipeline
    from tasks.measurement import benchmark as bench_module

    port, db, server_log = free_port(), tmp_path / "mlflow.db", tmp_path / "mlflow-server.log"
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("GREENLANE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    server = start_server(db, port, server_log)
    try:
        ctx = pipeline.prepare(None, {**FAST, "base_model": str(tiny_dir)}, "manual__outage")
        pipeline.make_variant(ctx, "baseline")

        measured = []

        def measure_then_lose_the_server(variant_dir, target, tcfg, bench, evalcfg, out_dir, **kwargs):
            """Stands in for run_benchmark (measuring is tested elsewhere; minutes here on a busy 2-core VM):
            returns a record and writes benchmark.json as it does, then the server dies, before any logging."""
            record = make_record("baseline", target=target, with_carbon=False, correct=[1, 1, 1, 1, 0] * 4)
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / "benchmark.json").write_text(json.dumps(record.to_dict()))
            measured.append(record)
            kill_server(server)
            assert refuses(port)
            return record

        monkeypatch.setattr(bench_module, "run_benchmark", measure_then_lose_the_server)
        t0 = time.monotonic()
        with pytest.raises(TrackingUnavailable) as err:
            pipeline.benchmark(ctx, "baseline", "cpu")
        assert time.monotonic() - t0 < 30  # three spent budgets of ~3 s (system metrics twice, the log call)
        assert "\n" not in str(err.value) and f"MLflow tracking server {uri} unreachable" in str(err.value)
        out_dir = Path(ctx["run_dir"]) / "results" / "baseline@cpu"
        saved = out_dir / "benchmark.json"
        assert json.loads(saved.read_text())["greenlane_identity"]["dag_run_id"] == "manual__outage"
        assert not (out_dir / "result.json").exists()
        mtime = saved.stat().st_mtime_ns

        server = start_server(db, port, server_log)  # same store, same port: the server is back
        with caplog.at_level(logging.INFO, logger="greenlane"):
            result_file = pipeline.benchmark(ctx, "baseline", "cpu")  # Airflow's retry of the task
        assert len(measured) == 1, "the retry measured again"
        assert saved.stat().st_mtime_ns == mtime
        assert "reusing the record an earlier try of this DAG run measured" in caplog.text
        result = json.loads(Path(result_file).read_text())
        assert result["energy_j_per_1k_tokens"] == measured[0].energy.energy_j_per_1k_tokens

        champions = pipeline.promote(ctx, [result_file])
        assert champions == {"cpu": "baseline"}
        c = MlflowClient(uri)
        all_runs = c.search_runs([ctx["experiment_id"]])
        assert sorted(r.info.run_name for r in all_runs) == ["baseline@cpu", "optimize manual__outage"]  # no duplicate
        assert [r.info.status for r in all_runs] == ["FINISHED", "FINISHED"]
        champion = c.get_model_version_by_alias(ctx["registered_model"], "champion-cpu")
        assert champion.run_id == result["run_id"]  # promoted from the finished run that holds the record
        assert len(c.search_model_versions(f"name='{ctx['registered_model']}'")) == 1
    finally:
        kill_server(server)
    assert refuses(port)


# --- a read-only store -------------------------------------------------------------------------------------------

def make_read_only(path: Path) -> None:
    """chmod does not stop root; the immutable attribute does (CAP_LINUX_IMMUTABLE, which root has)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)


def make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o644)


def test_a_read_only_store_fails_at_load_with_one_line_and_moves_nothing(tiny_dir, tmp_path):
    if os.geteuid() == 0 and shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a file read-only for root")
    home = tmp_path / "home"
    home.mkdir()
    db = home / "mlflow.db"
    uri = f"sqlite:///{db}"
    c = MlflowClient(uri, registry_uri=uri)  # a store with a champion already: it must not move
    run = c.create_run(c.create_experiment("earlier"))
    c.set_terminated(run.info.run_id)
    c.create_registered_model("tiny-llama")
    c.create_model_version("tiny-llama", "file:///earlier/model", run_id=run.info.run_id)
    c.set_registered_model_alias("tiny-llama", "champion-cpu", "1")
    make_read_only(db)
    try:
        env = {**os.environ, "GREENLANE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "tasks.cli", "run", "--set", f"base_model={tiny_dir}"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - t0
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert f"MLflow store {uri} is read-only" in lines[0]
        assert elapsed < 30, elapsed  # at load, before Airflow starts
        assert not (home / "airflow").exists()

        # Read-only after load (e.g. remounted mid-run): a task's MLflow write fails with one line, not retried.
        from tasks.tracking import runs

        with pytest.raises(GreenlaneError, match=f"MLflow store {uri} cannot be written"):
            tracking_errors(lambda ctx: runs.ensure_experiment(ctx["tracking_uri"], "new"))({"tracking_uri": uri})
    finally:
        make_writable(db)
    assert str(c.get_model_version_by_alias("tiny-llama", "champion-cpu").version) == "1"
    assert [r.info.status for r in c.search_runs([e.experiment_id for e in c.search_experiments()])] == ["FINISHED"]
