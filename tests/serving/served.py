"""Helpers of the serving tests: a `greenlane serve` process on 127.0.0.1 and its client, the test config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BENCHMARK_J_PER_1K = {"1": 321.5, "2": 123.25}  # what each version's (test) benchmark run logged
API_KEY_ENV = "GREENLANE_TEST_SERVE_KEY"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def write_config(path: Path, store: tuple[str, str], **serve) -> Path:
    uri, name = store
    path.write_text(yaml.safe_dump({
        "variants": ["baseline"],
        # The explicit estimate meter: cheap to window every second (auto here would be codecarbon's estimate).
        "targets": {"cpu": {"hardware": "cpu", "region": "CISO", "energy_meter": "estimate"}},
        "mlflow": {"tracking_uri": uri, "registered_model": name},
        "serve": {"energy_window_s": 1.0, **serve},
    }))
    return path


class Served:
    """One `greenlane serve` process: its port, PID file, and a small JSON client."""

    def __init__(self, config: Path, tmp: Path, key: str | None = None, *extra: str):
        self.port, self.key, self.pid_file = free_port(), key, tmp / f"serve-{time.monotonic_ns()}.pid"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        if key:
            env[API_KEY_ENV] = key
        self.log = (tmp / f"{self.pid_file.stem}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tasks.cli", "serve", "--alias", "champion-cpu", "--config", str(config),
             "--port", str(self.port), "--threads", "1", "--pid-file", str(self.pid_file), *extra],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() - t0 > 180:
                self.proc.kill()
                raise AssertionError(f"server did not start: {Path(self.log.name).read_text()[-3000:]}")
            time.sleep(0.2)

    def request(self, method: str, path: str, body=None, auth: bool = True, raw: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict | str]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json", **(headers or {})}
        if auth and self.key:
            h["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def metrics(self):
        """{(name, frozenset(labels)): value} of /metrics, parsed by prometheus-client's own parser."""
        from prometheus_client.parser import text_string_to_metric_families

        status, text = self.request("GET", "/metrics", auth=False)
        assert status == 200
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def stop(self) -> int:
        """SIGTERM to the PID the server wrote; its exit code."""
        pid = int(self.pid_file.read_text())
        assert pid == self.proc.pid
        os.kill(pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def value(metrics: dict, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= ls)
