"""Real servers and a real browser for UI checks: an `mlflow server` on 127.0.0.1 and headless Chromium.

Imported by tests as `from browser import ...` (pytest puts tests/ on sys.path for its conftest).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--virtual-time-budget=15000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f} s")
        time.sleep(0.5)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, workdir: Path):
    """`mlflow server` over `backend_uri` on a free 127.0.0.1 port; yields its URL; stopped by PID."""
    port = free_port()
    log = open(Path(workdir) / "mlflow-server.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", backend_uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def dump_dom(url: str, timeout_s: float = 120) -> str:
    """The page's DOM after its scripts ran (headless Chromium, virtual time), as text."""
    out = subprocess.run(["chromium", *CHROMIUM_FLAGS, "--dump-dom", url], capture_output=True, text=True,
                         timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"chromium failed on {url}: {out.stderr[-2000:]}")
    return out.stdout
