"""Route a workload, compare with the baselines, and trace the trade-off over zeta (the paper's Figure 3).

Every figure here is a prediction of the candidates' workload models for this workload, not a
measurement; `energy_sources` in each result says what the models were fitted on, and
`mixed_energy_sources` is True when measured and estimated energy are being compared.

Baselines get no share constraints: round-robin and random spread the load evenly (in expectation),
single-model sends everything to one candidate, which is what serving without a router does.
"""

from __future__ import annotations

import numpy as np

from tasks.errors import GreenlaneError
from tasks.routing import solve as solvers
from tasks.routing.candidates import Candidate, cost_matrices, extrapolated
from tasks.routing.workload import Workload

OBJECTIVES = {"energy": "energy_j", "carbon": "gco2e"}
DEFAULT_ZETAS = tuple(round(z, 2) for z in np.linspace(0.0, 1.0, 11))


def summarize(assign: np.ndarray, costs: dict, cands: list[Candidate]) -> dict:
    """Totals of one assignment: shares, energy, carbon, mean accuracy and runtime."""
    n = len(assign)
    idx = np.arange(n)
    counts = np.bincount(assign, minlength=len(cands))
    return {
        "shares": {c.name: float(counts[k] / n) for k, c in enumerate(cands)},
        "queries": {c.name: int(counts[k]) for k, c in enumerate(cands)},
        "total_energy_j": float(costs["energy_j"][idx, assign].sum()),
        "total_gco2e": float(costs["gco2e"][idx, assign].sum()),
        "mean_accuracy": float(costs["accuracy"][assign].mean()),
        "mean_runtime_s": float(costs["runtime_s"][idx, assign].mean()),
        "total_runtime_s": float(costs["runtime_s"][idx, assign].sum()),
    }


def baselines(costs: dict, cands: list[Candidate], seed: int = 0) -> dict[str, dict]:
    """Round-robin, uniform random (seeded), and every candidate alone."""
    n, k = costs["energy_j"].shape
    out = {
        "round-robin": summarize(np.arange(n) % k, costs, cands),
        "random": summarize(np.random.default_rng(seed).integers(0, k, n), costs, cands),
    }
    for j, c in enumerate(cands):
        out[f"single:{c.name}"] = summarize(np.full(n, j), costs, cands)
    return out


def _sources(cands: list[Candidate]) -> dict:
    return {
        "energy_sources": {c.name: c.energy_source for c in cands},
        "mixed_energy_sources": len({c.measured for c in cands}) > 1,
    }


def prepare(workload: Workload, cands: list[Candidate], objective: str = "energy") -> tuple[dict, np.ndarray, np.ndarray]:
    """Cost matrices and share bounds for this workload (shared across the zetas of a curve)."""
    if objective not in OBJECTIVES:
        raise GreenlaneError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    costs = cost_matrices(cands, workload.tin, workload.tout)
    lo, hi = solvers.count_bounds(len(workload), [c.min_share for c in cands], [c.max_share for c in cands],
                                  [c.name for c in cands])
    return costs, lo, hi


def route(workload: Workload, cands: list[Candidate], zeta: float, objective: str = "energy",
          solver: str = "fast", seed: int = 0, time_limit_s: float | None = None) -> dict:
    """The optimal routing at `zeta`, its totals, the baselines' totals, and provenance."""
    solvers.check_size(len(workload), solver)  # before the (N, K) cost matrices are built
    costs, lo, hi = prepare(workload, cands, objective)
    cost = solvers.objective(costs[OBJECTIVES[objective]], costs["accuracy"], zeta)
    assign, seconds = solvers.solve(cost, lo, hi, solver, time_limit_s)
    return {
        "zeta": zeta,
        "objective": objective,
        "solver": solver,
        "solve_s": seconds,
        "objective_value": solvers.total(cost, assign),
        "workload": workload.summary(),
        "candidates": [{"name": c.name, "target": c.target, "accuracy": c.accuracy, "region": c.region,
                        "hardware": c.hardware, "min_share": c.min_share, "max_share": c.max_share,
                        "energy_source": c.energy_source} for c in cands],
        "routed": summarize(assign, costs, cands),
        "baselines": baselines(costs, cands, seed),
        "extrapolated_share": extrapolated(cands, workload.tin, workload.tout),
        **_sources(cands),
    }


def tradeoff(workload: Workload, cands: list[Candidate], zetas=DEFAULT_ZETAS, objective: str = "energy",
             solver: str = "fast", seed: int = 0, time_limit_s: float | None = None) -> dict:
    """The routed totals at each zeta plus the baselines: the data behind routing_curves_plot.
    `time_limit_s` bounds each zeta's solve."""
    solvers.check_size(len(workload), solver)
    costs, lo, hi = prepare(workload, cands, objective)
    rows = []
    for zeta in zetas:
        cost = solvers.objective(costs[OBJECTIVES[objective]], costs["accuracy"], float(zeta))
        assign, seconds = solvers.solve(cost, lo, hi, solver, time_limit_s)
        rows.append({"zeta": float(zeta), "solve_s": seconds, **summarize(assign, costs, cands)})
    return {"objective": objective, "workload": workload.summary(), "curve": rows,
            "baselines": baselines(costs, cands, seed), **_sources(cands)}
