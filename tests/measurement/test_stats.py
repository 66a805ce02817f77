"""Confidence intervals on fixed numbers, checkable by hand."""

from __future__ import annotations

import math

import pytest

from tasks.errors import GreenlaneError
from tasks.measurement.stats import accuracy_delta_ci95, mean_ci95, paired_bootstrap_delta, wilson_ci95, within


def test_mean_ci95_by_hand():
    mean, half, n = mean_ci95([1.0, 2.0, 3.0])
    # sd = 1, t(0.975, df=2) = 4.3027
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_mean_ci95_shrinks_with_n():
    base = [9.0, 11.0, 10.0, 12.0, 8.0]
    widths = [mean_ci95(base * k)[1] for k in (1, 2, 4, 8)]
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 3


def test_mean_ci95_undefined_below_two():
    assert math.isnan(mean_ci95([5.0])[1]) and mean_ci95([5.0])[:1] == (5.0,)
    assert mean_ci95([])[2] == 0
    assert not within([5.0], 0.5)  # one sample never counts as converged


def test_within_relative_target():
    assert within([100.0, 100.0, 100.0], 0.05)  # no spread at all
    assert within([99.0, 101.0] * 10, 0.05) and not within([50.0, 150.0, 100.0], 0.05)


def test_wilson_by_hand():
    lo, hi = wilson_ci95(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_ci95(10, 10)[1] == pytest.approx(1.0) and wilson_ci95(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_ci95(0, 10)[0] == 0.0
    with pytest.raises(GreenlaneError):
        wilson_ci95(0, 0)


def test_paired_bootstrap_degenerate_cases():
    same = [1, 0, 1, 1, 0]
    assert paired_bootstrap_delta(same, same) == (0.0, 0.0, 0.0)  # identical answers: no uncertainty in the delta
    assert paired_bootstrap_delta([0] * 6, [1] * 6) == (1.0, 1.0, 1.0)


def test_paired_bootstrap_half_flipped():
    a, b = [0] * 20, [1] * 10 + [0] * 10
    delta, lo, hi = paired_bootstrap_delta(a, b, n=4000, seed=1)
    # differences are 10 ones and 10 zeros: mean 0.5, se = 0.5/sqrt(20) = 0.112 -> about 0.28..0.72
    assert delta == 0.5 and 0.25 < lo < 0.35 and 0.65 < hi < 0.75
    assert paired_bootstrap_delta(a, b, n=4000, seed=1) == (delta, lo, hi)  # seeded


def test_paired_bootstrap_pairs_matter():
    """Same accuracies, but agreeing per example gives a much narrower delta CI than disagreeing."""
    a = [1] * 10 + [0] * 10
    agree = a[:9] + [0] + a[10:]  # one example lost
    shuffled = [0] * 9 + [1] * 9 + [0, 0]  # same 9/20, different examples
    _, lo1, hi1 = paired_bootstrap_delta(a, agree)
    _, lo2, hi2 = paired_bootstrap_delta(a, shuffled)
    assert hi1 - lo1 < (hi2 - lo2) / 2


def test_accuracy_delta_on_records():
    base = {"variant": "baseline", "correct": [1, 1, 0, 1]}
    var = {"variant": "v", "correct": [1, 0, 0, 1]}
    out = accuracy_delta_ci95(base, var)
    assert out["accuracy_delta"] == -0.25 and out["accuracy_delta_ci95_lo"] <= -0.25 <= out["accuracy_delta_ci95_hi"]
    assert out["accuracy_delta_n"] == 4
    with pytest.raises(GreenlaneError, match="same eval config"):
        accuracy_delta_ci95(base, {"variant": "v", "correct": [1]})
    with pytest.raises(GreenlaneError, match="no per-example"):
        accuracy_delta_ci95(base, {"variant": "v"})


def test_scipy_backed_figures_match_the_hand_written_ones():
    """Recorded from the hand-written versions (git ef2d78c) before scipy.stats took over: same seed,
    same draws, same figures."""
    assert paired_bootstrap_delta([0] * 20, [1] * 10 + [0] * 10, n=4000, seed=1) == (0.5, 0.3, 0.7)
    assert paired_bootstrap_delta([1] * 10 + [0] * 10, [1] * 9 + [0] * 11) == (-0.05, -0.15, 0.0)
    assert wilson_ci95(87, 120) == pytest.approx((0.6390703417242319, 0.7969710333873515), abs=1e-15)


def test_edge_inputs():
    assert paired_bootstrap_delta([1], [0]) == (-1.0, -1.0, -1.0)  # one example: every resample is it
    with pytest.raises(GreenlaneError, match="0 <= successes <= n"):
        wilson_ci95(11, 10)
