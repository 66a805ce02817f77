"""A real MLflow store with the tiny model registered twice, and a Redis on 127.0.0.1 (tests/serving/served.py
starts the servers)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from served import BENCHMARK_J_PER_1K, free_port, port_open


@pytest.fixture(scope="session")
def store(tiny_dir, tmp_path_factory):
    """(tracking URI, registered name): versions 1 and 2 of the tiny model, champion-cpu on version 1."""
    from tasks.tracking import registry, runs, serving

    root = tmp_path_factory.mktemp("serve-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "e", artifact_location=(root / "art").as_uri())
    for n, variant in (("1", "baseline"), ("2", "again")):
        run_id = runs.ensure_run(uri, exp, key=f"r/{variant}", run_name=variant, tags={"variant": variant})
        runs.log_record(uri, run_id, {"energy_j_per_1k_tokens": BENCHMARK_J_PER_1K[n]}, {},
                        {"energy_source": "estimate:test-fixture"})
        serving.log_servable(uri, run_id, tiny_dir, "model")
        assert registry.register_variant(uri, "m", run_id, variant) == n
    registry.promote(uri, "m", "cpu", "1", is_default=True, decision_note="test")
    return uri, "m"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A Redis on 127.0.0.1 for the servers' shared cache; None without the Debian package redis-server."""
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not port_open(port):
        assert proc.poll() is None and time.monotonic() - t0 < 30, "redis-server did not start"
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=30)
