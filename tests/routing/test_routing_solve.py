"""Routing on small workloads whose optimum is known by hand, the share constraints, and fast vs PuLP."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tasks.errors import GreenlaneError
from tasks.routing import evaluate, solve
from tasks.routing.workload import make as make_workload

TOUT = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
WORK = make_workload([5] * len(TOUT), TOUT, "hand")


def test_zeta_0_sends_everything_to_the_most_accurate(trio):
    result = evaluate.route(WORK, trio, zeta=0.0)
    assert result["routed"]["shares"] == {"big": 1.0, "mid": 0.0, "small": 0.0}
    assert result["routed"]["mean_accuracy"] == pytest.approx(0.80)


def test_zeta_1_sends_everything_to_the_least_energy(trio):
    result = evaluate.route(WORK, trio, zeta=1.0)
    assert result["routed"]["shares"]["small"] == 1.0
    assert result["routed"]["total_energy_j"] == pytest.approx(1.0 * sum(TOUT))


def test_zeta_0_breaks_accuracy_ties_by_energy(candidate):
    twins = [candidate("hungry", 0.7, 5.0), candidate("frugal", 0.7, 1.0)]
    assert evaluate.route(WORK, twins, zeta=0.0)["routed"]["shares"]["frugal"] == 1.0


def test_max_share_caps_the_cheapest_and_the_rest_goes_to_the_next(trio):
    trio[2] = dataclasses.replace(trio[2], max_share=0.5)
    routed = evaluate.route(WORK, trio, zeta=1.0)["routed"]
    assert routed["queries"] == {"big": 0, "mid": 5, "small": 5}
    # moving a query from small to mid costs 1 J per output token: the optimum moves the five shortest
    assert routed["total_energy_j"] == pytest.approx(2.0 * sum(TOUT[:5]) + 1.0 * sum(TOUT[5:]))


def test_min_share_forces_load_onto_the_expensive_candidate_with_the_shortest_queries(trio):
    trio[0] = dataclasses.replace(trio[0], min_share=0.3)
    costs, lo, hi = evaluate.prepare(WORK, trio)
    assign, _ = solve.solve(solve.objective(costs["energy_j"], costs["accuracy"], 1.0), lo, hi)
    assert sorted(np.flatnonzero(assign == 0).tolist()) == [0, 1, 2]  # the three shortest queries
    assert np.all(assign[3:] == 2)


def test_every_candidate_can_be_required_to_get_load(trio):
    routed = evaluate.route(WORK, [dataclasses.replace(c, min_share=0.1) for c in trio], zeta=1.0)["routed"]
    assert all(n >= 1 for n in routed["queries"].values())


@pytest.mark.parametrize("shares, message", [
    ({"max_share": 0.3}, "maximum shares add up to 9 queries but the workload has 10"),
    ({"min_share": 0.4}, "minimum shares add up to 12 queries but the workload has only 10"),
])
def test_infeasible_shares_are_a_clear_error(trio, shares, message):
    with pytest.raises(GreenlaneError, match=message):
        evaluate.route(WORK, [dataclasses.replace(c, **shares) for c in trio], zeta=0.5)


def test_min_above_max_names_the_candidate(trio):
    with pytest.raises(GreenlaneError, match="candidate mid must serve at least 4 and at most 2"):
        solve.count_bounds(10, [0, 0.4, 0], [1, 0.25, 1], ["big", "mid", "small"])


def test_zeta_out_of_range_is_rejected(trio):
    with pytest.raises(GreenlaneError, match=r"zeta must be in \[0, 1\]"):
        evaluate.route(WORK, trio, zeta=1.5)


@pytest.mark.parametrize("seed", range(6))
def test_fast_solver_matches_pulp(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(20, 60)), int(rng.integers(2, 5))
    # few distinct rows, so the grouped LP really groups; random shares that stay feasible
    cost = rng.normal(size=(8, k))[rng.integers(0, 8, n)]
    lo = np.minimum(rng.integers(0, n // k + 1, k), n // k)
    hi = np.maximum(lo, rng.integers(n // k, n + 1, k))
    fast, _ = solve.solve(cost, lo, hi, "fast")
    exact, _ = solve.solve(cost, lo, hi, "pulp")
    assert solve.total(cost, fast) == pytest.approx(solve.total(cost, exact), abs=1e-9)
    counts = np.bincount(fast, minlength=k)
    assert np.all(counts >= lo) and np.all(counts <= hi)


def test_curve_trades_accuracy_for_energy_monotonically(trio):
    curve = evaluate.tradeoff(WORK, trio)["curve"]
    energy = [p["total_energy_j"] for p in curve]
    accuracy = [p["mean_accuracy"] for p in curve]
    assert all(a >= b - 1e-9 for a, b in zip(energy, energy[1:]))
    assert all(a >= b - 1e-9 for a, b in zip(accuracy, accuracy[1:]))
    assert energy[0] > energy[-1] and accuracy[0] > accuracy[-1]


def test_baselines(trio):
    base = evaluate.route(WORK, trio, zeta=0.5)["baselines"]
    assert base["round-robin"]["queries"] == {"big": 4, "mid": 3, "small": 3}
    assert base["single:mid"]["total_energy_j"] == pytest.approx(2.0 * sum(TOUT))
    assert sum(base["random"]["queries"].values()) == len(TOUT)


def test_carbon_objective_prices_the_region(trio):
    # same energy model, one on a clean grid: carbon-optimal routing picks it, energy-optimal cannot tell
    clean, dirty = (dataclasses.replace(trio[2], name=n, region=r) for n, r in (("clean", "QC"), ("dirty", "PACE")))
    routed = evaluate.route(WORK, [dirty, clean], zeta=1.0, objective="carbon")["routed"]
    assert routed["shares"]["clean"] == 1.0
    assert routed["total_gco2e"] < evaluate.route(WORK, [dirty, clean], zeta=1.0)["baselines"]["single:dirty"]["total_gco2e"]
