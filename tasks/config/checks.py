"""Bounds and checks the config sections share: size limits, MLflow's naming rules, paths, stores."""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo

from tasks.errors import GreenlaneError

# Upper bounds on sizes, so a typo like 10^9 fails at load instead of as a MemoryError hours later. Each is far
# above any useful run on the machines greenlane targets; raise one here if a real run needs more.
MAX_PROMPTS = 10_000  # benchmark.prompts: prompts per measured pass
MAX_NEW_TOKENS = 32_768  # benchmark.max_new_tokens: tokens generated per request
MAX_PASSES = 1_000  # benchmark.warmup, repeats, max_repeats, energy_grid.repeats
MAX_BATCH_SIZE = 1_024  # benchmark.batch_sizes
MAX_THREADS = 4_096  # benchmark.threads
MAX_GRID_TOKENS = 131_072  # benchmark.energy_grid.tin / tout: the longest context of common small models
MAX_GRID_CELLS = 1_000  # benchmark.energy_grid: tin x tout cells
MAX_SEED = 2**32 - 1  # seed: numpy's and torch's seed range
# MLflow 3.17's rule for alias names (mlflow/utils/validation.py, _REGISTERED_MODEL_ALIAS_REGEX and
# MAX_REGISTERED_MODEL_ALIAS_LENGTH): a target's alias is `champion-<target>`, so a target name must pass it too.
ALIAS_PART = re.compile(r"^[\w\-]+$")
MAX_ALIAS_LENGTH = 255
# Registered model names end up inside MLflow search filters (`name='...'`); MLflow itself forbids `/` and `:`.
REGISTERED_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")
# URI schemes MLflow 3.17 has a tracking store for (mlflow.tracking._tracking_service.utils); "" is a plain path.
TRACKING_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks",
                    "databricks-uc", "uc")


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` (YAML) in any float field fails here, not as a crash in the carbon maths
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True, allow_inf_nan=False)


def check_tracking_uri(uri: str, where: str) -> str:
    """`uri` if MLflow has a tracking store for its scheme (as mlflow.utils.uri.get_uri_scheme reads it)."""
    scheme = urllib.parse.urlparse(uri).scheme.lower().split("+")[0]  # postgresql+psycopg2 -> postgresql
    if len(scheme) == 1:  # a Windows drive letter: a path
        scheme = ""
    if scheme not in TRACKING_SCHEMES:
        raise ValueError(f"{where} {uri!r}: MLflow has no tracking store for scheme {scheme!r}; use one of "
                         f"{', '.join(s + '://' for s in TRACKING_SCHEMES if s)} or a local path")
    return uri


def check_store_writable(uri: str) -> None:
    """A GreenlaneError unless this user can write a local SQLite store: the file, and its folder (SQLite's journal).

    Checked by what writes (`greenlane run`, the prepare task), not at every load: reading a champion from a
    read-only store is fine. os.access honours read-only mounts and `chattr +i`, for root too. A server's store
    is the server's business.
    """
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?")[0])
    if str(path) in ("", ".", ":memory:"):
        return
    # An absent store is created, with any missing folders, under the nearest folder that exists.
    must_write = [path, path.parent] if path.exists() else [next(p for p in path.parents if p.exists())]
    for p in must_write:
        if p.exists() and not os.access(p, os.W_OK):
            raise GreenlaneError(f"MLflow store {uri} is read-only here ({p} is not writable): make it writable, or "
                                 "set GREENLANE_HOME or mlflow.tracking_uri to a writable place")


def check_registered_model(name: str) -> str:
    if not REGISTERED_MODEL.match(name):
        raise ValueError(f"registered model name {name!r} may hold only letters, digits, '_', '.', '-' (starting with "
                         "a letter or digit, at most 256); set mlflow.registered_model")
    return name


def _local_path(value: str) -> Path:
    """`value` as an absolute path (`~` expanded); a ValueError, as pydantic reports it, when it cannot be one."""
    try:
        return Path(value).expanduser().resolve()
    except (RuntimeError, OSError) as err:  # `~nosuchuser/x`; a path the OS refuses
        raise ValueError(f"{value!r} is not a usable path ({err})") from None


def _checks_this_machine(info: ValidationInfo) -> bool:
    """Whether validation also checks this machine (installed runtimes): when a user's config is loaded
    (`load_config`), not when a task on another worker re-reads the run's validated config."""
    return bool(info.context and info.context.get("this_machine"))
