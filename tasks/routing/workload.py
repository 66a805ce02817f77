"""Workloads: a list of queries, each an (input tokens, output tokens) pair.

A router only needs the token counts of each query, because the candidates' workload models predict
energy and runtime from them. Workloads come from a CSV a user exported from their serving logs, or from
`synthetic`, a seeded generator with heavy-tailed lengths: most chat requests are short, a few are long,
and those few dominate the energy, so a uniform or normal length distribution would understate what
routing can save.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    """A validated workload: equal lengths, at least one query, whole token counts >= 1."""
    tin, tout = np.asarray(tin, dtype=float), np.asarray(tout, dtype=float)
    if tin.shape != tout.shape or tin.ndim != 1:
        raise GreenlaneError(f"{source}: tin and tout must be 1-D and of equal length, got {tin.shape} and {tout.shape}")
    if len(tin) == 0:
        raise GreenlaneError(f"{source}: the workload has no queries")
    bad = ~np.isfinite(tin) | ~np.isfinite(tout) | (tin < 1) | (tout < 1) | (tin != np.round(tin)) | (tout != np.round(tout))
    if bad.any():
        first = int(np.argmax(bad))
        raise GreenlaneError(
            f"{source}: query {first} has tin={tin[first]:g}, tout={tout[first]:g}; token counts must be whole numbers >= 1"
        )
    return Workload(tin.astype(np.int64), tout.astype(np.int64), source)


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


def read_csv(path: str | Path) -> Workload:
    """Queries from a CSV with columns `tin` and `tout` (other columns are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise GreenlaneError(f"no such workload CSV: {path}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise GreenlaneError(f"{path}: missing column(s) {', '.join(missing)}; a workload CSV needs tin and tout")
        tin, tout = [], []
        for line, row in enumerate(reader, start=2):
            try:
                tin.append(float(row["tin"]))
                tout.append(float(row["tout"]))
            except (TypeError, ValueError):
                raise GreenlaneError(f"{path}:{line}: tin and tout must be numbers, got {row['tin']!r}, {row['tout']!r}") from None
    return make(tin, tout, str(path))


def write_csv(workload: Workload, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(zip(workload.tin.tolist(), workload.tout.tolist()))
    return path
