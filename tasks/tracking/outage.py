"""A tracking server that is down, hung or read-only: a bounded wait, then one line that names it.

MLflow retries each HTTP request with exponential backoff; its defaults (7 retries, factor 2, a 120 s
timeout) make one call to a dead server block ~250 s, and a task makes dozens. `apply_http_budget` puts the
run's `mlflow.http_*` settings into MLflow's own environment variables (read by MLflow at every request),
unless the user set that variable. `tracking_errors` turns what MLflow raises once the budget is spent into
`TrackingUnavailable`: one line, no chained pages of urllib3 tracebacks. It is not a GreenlaneError, so
Airflow retries the task (the server may be back); an unwritable SQLite store is, as no retry fixes it.

Only the standard library at import: the DAG tasks import this before anything heavy.
"""

from __future__ import annotations

import functools
import os
import re

from tasks.errors import GreenlaneError

# config field -> MLflow 3.17's variable (mlflow/environment_variables.py), with MLflow's own default
HTTP_ENV = {
    "http_max_retries": ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7),
    "http_backoff_factor": ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 2),
    "http_backoff_jitter": ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 1.0),
    "http_timeout_s": ("MLFLOW_HTTP_REQUEST_TIMEOUT", 120),
}
# The variables greenlane itself set in this process: a later config may change them, a user's never.
OURS_ENV = "_GREENLANE_MLFLOW_HTTP_SET"

_API_FAILURE = re.compile(r"API request to (?P<url>\S+) failed with (?:timeout )?exception (?P<rest>.*)", re.S)
# What SQLite says when its file cannot be written (read-only, immutable, a hot journal it cannot roll back,
# a full disk): no retry fixes these. "database is locked" is left alone: it passes.
_SQLITE_UNWRITABLE = re.compile(r"\(sqlite3\.OperationalError\) (attempt to write a readonly database|disk I/O error|"
                                r"unable to open database file|database or disk is full)")


class TrackingUnavailable(Exception):
    """The tracking server did not answer within the retry budget. Not a GreenlaneError: a retry may succeed."""


def apply_http_budget(mlflow_cfg, environ: dict | None = None) -> dict[str, str]:
    """Set MLflow's HTTP retry variables from `mlflow_cfg` (a MlflowConfig) where the user has not set them.

    Returns the variables set. The child processes a run starts inherit them.
    """
    environ = os.environ if environ is None else environ
    ours = set(filter(None, environ.get(OURS_ENV, "").split(",")))
    applied = {}
    for field, (var, _) in HTTP_ENV.items():
        if var in environ and var not in ours:  # the user's choice wins
            continue
        applied[var] = str(getattr(mlflow_cfg, field))
        ours.add(var)
    environ.update(applied)
    environ[OURS_ENV] = ",".join(sorted(ours))
    return applied


def http_budget(environ: dict | None = None) -> dict[str, float]:
    """The retry settings MLflow will use now, by config field name (MLflow's default where unset or unreadable)."""
    environ = os.environ if environ is None else environ
    out = {}
    for field, (var, default) in HTTP_ENV.items():
        try:
            out[field] = type(default)(environ.get(var, default))
        except ValueError:
            out[field] = default
    return out


def worst_case_s(budget: dict[str, float]) -> float:
    """The longest one MLflow request can block: every try timing out, with the longest backoffs between them.

    urllib3 2.x sleeps nothing before the first retry, then factor x 2^(n-1) (+ up to `jitter`), at most 120 s.
    """
    retries = int(budget["http_max_retries"])
    sleeps = sum(min(120.0, budget["http_backoff_factor"] * 2 ** (n - 1) + budget["http_backoff_jitter"])
                 for n in range(2, retries + 1))
    return (retries + 1) * budget["http_timeout_s"] + sleeps


def translate(err: BaseException, store: str | None = None) -> Exception | None:
    """The one-line error for what MLflow raised when its store failed; None for any other error."""
    text = str(err)
    found = _API_FAILURE.search(text)
    if found:
        url = re.match(r"[a-z]+://[^/]+", found["url"])
        server = url.group(0) if url else found["url"]
        budget = http_budget()
        retries, timeout = int(budget["http_max_retries"]), int(budget["http_timeout_s"])
        return TrackingUnavailable(
            f"MLflow tracking server {server} unreachable after {retries + 1} tries (retry budget up to "
            f"{worst_case_s(budget):.0f} s: mlflow.http_max_retries={retries}, http_timeout_s={timeout}): "
            f"{_reason(found['rest'])}")
    unwritable = _SQLITE_UNWRITABLE.search(text)
    if unwritable:
        return GreenlaneError(f"MLflow store {store or 'of this run'} cannot be written (SQLite: {unwritable[1]}): "
                              "is it read-only, or the disk full? Fix that, or point mlflow.tracking_uri elsewhere")
    return None


def _reason(rest: str) -> str:
    """The root cause inside urllib3's nested message, e.g. `[Errno 111] Connection refused`, on one line."""
    for pattern in (r"\[Errno -?\d+\][^'\")]*", r"Read timed out\.?(?: \(read timeout=[\d.]+\))?",
                    r"too many \d+ error responses", r"Connection aborted[^'\")]*", r"RemoteDisconnected\([^)]*\)"):
        hit = re.search(pattern, rest)
        if hit:
            return hit.group(0).strip()
    return " ".join(rest.split())[:200]


def tracking_errors(fn):
    """Decorate a pipeline task: an MLflow store failure leaves it as one line (see `translate`).

    The store is the task's `ctx["tracking_uri"]` when it has a ctx argument.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (GreenlaneError, TrackingUnavailable):
            raise
        except Exception as err:
            ctx = next((a for a in (*args, *kwargs.values()) if isinstance(a, dict) and "tracking_uri" in a), None)
            one_line = translate(err, ctx and ctx["tracking_uri"])
            if one_line is None:
                raise
            raise one_line from None  # the chained urllib3/requests tracebacks say nothing the line does not
    return wrapper
