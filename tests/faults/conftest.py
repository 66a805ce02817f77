"""The fault tests' shared fixture: one migrated Airflow DB per test session, copied into each home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faults_helpers import REPO


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """An Airflow metadata DB migrated once, copied into each test's home (migrating takes ~20 s per home)."""
    home = tmp_path_factory.mktemp("template-home")
    code = "from tasks.runner import configure_airflow, migrate_db; configure_airflow(); migrate_db()"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "GREENLANE_HOME": str(home)},
                   check=True, capture_output=True, timeout=300)
    return home / "airflow" / "airflow.db"
