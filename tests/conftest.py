"""Shared fixtures: the real bundled SmolLM2 (prepared once) and a tiny random Llama using its tokenizer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
# The dequantized SmolLM2 is cached in the repo's own home, like `make demo` does, so it is built once per clone.
CACHE = REPO / ".greenlane" / "cache"


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    from tasks.models import resolve_base

    return resolve_base("bundled:SmolLM2-135M-Instruct", CACHE)


@pytest.fixture(scope="session")
def tiny_dir(smol_dir, tmp_path_factory) -> Path:
    from tasks.models import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", tokenizer_dir=smol_dir)


@pytest.fixture(scope="session")
def cli():
    """`cli("run", "--set", ...)` runs the greenlane command in a subprocess."""
    return run_cli


def run_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `greenlane ARGS` in a fresh interpreter (Airflow and MLflow settings stay per process)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tasks.cli", *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout
    )
