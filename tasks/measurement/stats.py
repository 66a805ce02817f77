"""Confidence intervals for benchmark figures, pure functions on numbers.

- `mean_ci95`: Student-t interval of a mean over repeated measurements (the
  benchmark repeats passes until its half-width is a small fraction of the mean).
- `wilson_ci95`: binomial interval of an accuracy over n examples (scipy's `binomtest`).
- `paired_bootstrap_delta`: interval of the accuracy difference between two
  models scored on the same examples, resampling examples (pairs), so per-example
  agreement between the two models narrows it as it should (scipy's `bootstrap`).
- `accuracy_delta_ci95`: the same on two benchmark records, for the promotion gates.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tasks.errors import GreenlaneError


def mean_ci95(xs: Sequence[float]) -> tuple[float, float, int]:
    """(mean, 95% CI half-width, n); the half-width is NaN when n < 2 (no spread to estimate)."""
    x = np.asarray(xs, dtype=float)
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), 1
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half, n


def within(xs: Sequence[float], rel: float) -> bool:
    """True when the 95% CI half-width of the mean is at most `rel` x |mean| (needs n >= 2)."""
    mean, half, n = mean_ci95(xs)
    return n >= 2 and half <= rel * abs(mean)


def wilson_ci95(successes: int, n: int) -> tuple[float, float]:
    """(lo, hi) Wilson score interval of a proportion; sane at 0/n and n/n, unlike the normal one."""
    from scipy.stats import binomtest

    if n <= 0:
        raise GreenlaneError("a proportion's interval needs n >= 1")
    if not 0 <= successes <= n:
        raise GreenlaneError(f"a proportion needs 0 <= successes <= n; got {successes} of {n}")
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def paired_bootstrap_delta(
    a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(delta, lo, hi): delta = mean(b) - mean(a) over paired examples, 95% percentile bootstrap.

    `a` and `b` are per-example scores (e.g. 0/1 correctness) of two models on the same
    examples in the same order; each resample draws example indices with replacement and
    keeps the pairs together.
    """
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise GreenlaneError(f"paired bootstrap needs two equal-length, non-empty lists; got {a.size} and {b.size}")
    if a.size == 1:  # every resample is the one example (scipy's bootstrap needs two)
        return (float(b[0] - a[0]),) * 3
    # Percentile interval: scipy's default, BCa, is undefined when every resample gives the same delta (two
    # models that answer alike), and this keeps the figures of the hand-written version (same draws per seed).
    res = bootstrap((a, b), lambda x, y, axis: np.mean(y - x, axis=axis), paired=True, vectorized=True,
                    n_resamples=n, method="percentile", confidence_level=0.95, rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return float((b - a).mean()), float(ci.low), float(ci.high)


def accuracy_delta_ci95(baseline: dict, variant: dict, n: int = 2000, seed: int = 0) -> dict:
    """Accuracy of `variant` minus `baseline` (two benchmark records) with its paired 95% interval.

    Both records must carry `correct` lists from the same eval examples. A gate such as
    "drop <= 1 point with 95% confidence" reads: `accuracy_delta_ci95_lo >= -0.01`.
    """
    for name, rec in (("baseline", baseline), ("variant", variant)):
        if not isinstance(rec.get("correct"), list):
            raise GreenlaneError(f"{name} record {rec.get('variant', '?')!r} has no per-example `correct` list")
    if len(baseline["correct"]) != len(variant["correct"]):
        raise GreenlaneError(
            f"cannot pair accuracy: baseline scored {len(baseline['correct'])} examples, "
            f"variant {variant.get('variant', '?')!r} {len(variant['correct'])}; benchmark both with the same eval config"
        )
    delta, lo, hi = paired_bootstrap_delta(baseline["correct"], variant["correct"], n=n, seed=seed)
    return {"accuracy_delta": delta, "accuracy_delta_ci95_lo": lo, "accuracy_delta_ci95_hi": hi,
            "accuracy_delta_n": len(variant["correct"])}
