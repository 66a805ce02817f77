"""Workloads: a list of queries, each an (input tokens, output tokens) pair.

A router only needs the token counts of each query, because the candidates' workload models predict
energy and runtime from them. Workloads come from a CSV a user exported from their serving logs, or from
`synthetic`, a seeded generator with heavy-tailed lengths: most chat requests are short, a few are long,
and those few dominate the energy, so a uniform or normal length distribution would understate what
routing can save.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.energy_model import MAX_TOKENS
from tasks.errors import GreenlaneError

COLUMNS = ("tin", "tout")


@dataclass(frozen=True)
class Workload:
    tin: np.ndarray
    """Input (prompt) tokens per query, integers >= 1."""
    tout: np.ndarray
    """Output (generated) tokens per query, integers >= 1."""
    source: str
    """Where the queries came from: a CSV path or `synthetic(n=..., seed=...)`."""

    def __len__(self) -> int:
        return len(self.tin)

    def summary(self) -> dict:
        return {
            "queries": len(self),
            "source": self.source,
            "tin_median": float(np.median(self.tin)),
            "tout_median": float(np.median(self.tout)),
            "tin_max": int(self.tin.max()),
            "tout_max": int(self.tout.max()),
            "tokens_out_total": int(self.tout.sum()),
        }


def make(tin, tout, source: str) -> Workload:
    """A validated workload: equal lengths, at least one query, whole token counts from 1 to MAX_TOKENS."""
    tin, tout = np.asarray(tin, dtype=float), np.asarray(tout, dtype=float)
    if tin.shape != tout.shape or tin.ndim != 1:
        raise GreenlaneError(f"{source}: tin and tout must be 1-D and of equal length, got {tin.shape} and {tout.shape}")
    if len(tin) == 0:
        raise GreenlaneError(f"{source}: the workload has no queries")
    bad = ~(_is_token_count(tin) & _is_token_count(tout))
    if bad.any():
        first = int(np.argmax(bad))
        raise GreenlaneError(f"{source}: query {first} has tin={tin[first]:g}, tout={tout[first]:g}; "
                             f"token counts must be whole numbers from 1 to {MAX_TOKENS:,}")
    return Workload(tin.astype(np.int64), tout.astype(np.int64), source)


def _is_token_count(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # NaN compares False: not a token count
        return np.isfinite(x) & (x >= 1) & (x <= MAX_TOKENS) & (x == np.round(x))


def synthetic(
    n: int,
    seed: int = 0,
    tin_median: float = 128,
    tout_median: float = 192,
    sigma: float = 0.9,
    max_tokens: int = 2048,
) -> Workload:
    """`n` queries with log-normal token counts around the given medians, clipped to [1, max_tokens].

    sigma=0.9 puts the 95th percentile at about 4.4x the median: a long tail of long requests. Input and
    output lengths are drawn independently; real traffic correlates them only weakly.
    """
    if n < 1:
        raise GreenlaneError(f"a synthetic workload needs n >= 1 queries, got {n}")
    if min(tin_median, tout_median, sigma, max_tokens) <= 0:
        raise GreenlaneError("tin_median, tout_median, sigma and max_tokens must all be > 0")
    rng = np.random.default_rng(seed)
    tin = np.clip(np.round(rng.lognormal(np.log(tin_median), sigma, n)), 1, max_tokens)
    tout = np.clip(np.round(rng.lognormal(np.log(tout_median), sigma, n)), 1, max_tokens)
    return make(tin, tout, f"synthetic(n={n}, seed={seed}, tin_median={tin_median:g}, tout_median={tout_median:g})")


def read_csv(path: str | Path, max_queries: int | None = None, too_many: str = "") -> Workload:
    """Queries from a CSV with columns `tin` and `tout` (other columns are ignored).

    Reading stops with a GreenlaneError (`too_many` appended) past `max_queries` rows, before they fill memory.
    """
    path = Path(path)
    if not path.is_file():
        raise GreenlaneError(f"no such workload CSV: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a spreadsheet's BOM is not part of "tin"
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise GreenlaneError(f"{path}: missing column(s) {', '.join(missing)}; "
                                     "a workload CSV needs tin and tout")
            tin, tout = [], []
            for line, row in enumerate(reader, start=2):
                if max_queries is not None and len(tin) == max_queries:
                    raise GreenlaneError(f"{path}: more than {max_queries:,} queries{too_many}")
                tin.append(_token_count(row, "tin", path, line))
                tout.append(_token_count(row, "tout", path, line))
    except (UnicodeDecodeError, csv.Error) as err:  # a binary file: undecodable bytes or NUL characters
        raise GreenlaneError(f"{path} is not a UTF-8 text CSV ({type(err).__name__}: {err})") from None
    except OSError as err:
        raise GreenlaneError(f"cannot read {path}: {err.strerror or err}") from None
    return make(tin, tout, str(path))


def _token_count(row: dict, column: str, path: Path, line: int) -> float:
    """One cell, checked where it is read, so an error names its row and column (not the energy models)."""
    raw = row[column]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not (1 <= value <= MAX_TOKENS and value.is_integer()):  # NaN fails the comparison; inf fails the bound
        raise GreenlaneError(f"{path}:{line}: column {column}: {raw!r} is not a token count "
                             f"(a whole number from 1 to {MAX_TOKENS:,})")
    return value


def write_csv(workload: Workload, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(zip(workload.tin.tolist(), workload.tout.tolist()))
    return path
