"""What the fault tests share: the repository, a slow-enough tiny run, fresh homes, their processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Slow enough that the signal lands inside the first benchmark (two variants: the second is still to come).
RUN_SETTINGS = ["--set", "eval.limit=6", "--set", "eval.perplexity_tokens=64", "--set", "benchmark.prompts=6",
                "--set", "benchmark.max_new_tokens=32", "--set", "benchmark.repeats=2",
                "--set", "variants=[baseline, bf16]", "--set", "gates.min_top1_agreement=null",
                "--set", "gates.min_accuracy=0", "--set", "gates.max_accuracy_drop=1"]


def new_home(tmp_path: Path, migrated_db: Path) -> Path:
    home = tmp_path / "home"
    (home / "airflow").mkdir(parents=True)
    shutil.copy(migrated_db, home / "airflow" / "airflow.db")
    return home


def processes_of(home: Path) -> list[int]:
    """Live processes whose environment names this GREENLANE_HOME (the run and anything it started)."""
    needle = f"GREENLANE_HOME={home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


# The re-run after the kill: as small as a run that benchmarks, decides and promotes can be.
# The baseline alone, no token-grid sweep: it still passes its (relaxed) gates and is promoted.
SMALL_RUN = ["--set", "eval.limit=2", "--set", "eval.perplexity_tokens=32", "--set", "benchmark.prompts=2",
             "--set", "benchmark.max_new_tokens=8", "--set", "benchmark.warmup=0", "--set", "benchmark.repeats=1",
             "--set", "benchmark.max_repeats=1", "--set", "benchmark.energy_grid.tin=[]",
             "--set", "benchmark.energy_grid.tout=[]", "--set", "variants=[baseline]",
             "--set", "gates.min_top1_agreement=null", "--set", "gates.min_accuracy=0", "--set", "gates.max_accuracy_drop=1"]


def start_run(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "GREENLANE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    # its own session: the test can SIGKILL `greenlane run`'s process group without hitting pytest
    return subprocess.Popen([sys.executable, "-m", "tasks.cli", "run", *args], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True)
