"""Where greenlane's files live: the repository, the default config, the home of runs and stores."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
BUNDLED_MODEL = "bundled:SmolLM2-135M-Instruct"


def greenlane_home() -> Path:
    """Where runs, caches and the embedded stores live (env GREENLANE_HOME, default ./.greenlane)."""
    return Path(os.environ.get("GREENLANE_HOME", REPO_ROOT / ".greenlane")).resolve()


def safe_name(name: str) -> str:
    """`name` as one path component: anything but letters, digits and `_.@-` becomes `_` (Airflow run ids carry
    `:` and `+`)."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name)


def run_dir(dag_run_id: str) -> Path:
    """The directory of one DAG run's files (config, variants, results, decision), under `greenlane_home()`."""
    return greenlane_home() / "runs" / safe_name(dag_run_id)
