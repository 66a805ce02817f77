"""The routing objective, the share bounds, and two exact solvers.

Normalization. The paper weighs normalized energy against normalized accuracy with zeta. Here:

    e_hat[i, k] = (e[i, k] - min_k e[i, k]) / mean_i (max_k e[i, k] - min_k e[i, k])
    a_hat[k]    = (a[k] - min a) / (max a - min a)

Subtracting a per-query constant changes no assignment (every query is served exactly once), so the
energy term measures what a choice *adds*; dividing by the mean per-query spread makes "worst instead of
best candidate for an average query" cost 1 on both sides, so zeta = 0.5 is a real balance. Scaling
accuracy by its spread matters because variants often differ by a point or two (0.71 vs 0.70): divided by
its level (a / max a) the accuracy term would vanish beside energy for every zeta > 0. Long queries still
weigh more, since e_hat keeps each query's own spread. A 1e-6 share of the other term breaks ties at the
ends (zeta = 0 prefers the cheaper of two equally accurate candidates).

Solvers. `solve_pulp` is the paper's MILP: one binary per (query, candidate), CBC through PuLP. The
structure is a transportation problem, whose constraint matrix is totally unimodular, so its LP
relaxation has an integral optimal vertex: `solve_fast` groups queries with identical cost rows (same
tin, tout), solves the grouped LP with HiGHS (interior point, then crossover to a vertex: ~10x faster
than simplex on 10k groups), and splits each group's integral flow back onto its queries. It is exact, not a heuristic; benchmarks/routing_scale.py measures both.

Limits. Each solver takes at most MAX_QUERIES queries and `time_limit_s` seconds per solve, so no solve
runs unbounded: CBC is a child process that outlives a killed caller, but not its time limit.
"""

from __future__ import annotations

import math
import time

import numpy as np

from tasks.errors import GreenlaneError

TIE_BREAK = 1e-6
# Most queries each solver routes in one run. fast: the (N, K) cost matrices and the grouping stay at a few
# hundred MB at 1e6. pulp: PuLP builds Python objects per binary (N x K of them) before CBC starts; 1e6
# queries had no answer after 9 min at 3 GB, 1e4 take about a minute on 2 cores (README).
MAX_QUERIES = {"fast": 1_000_000, "pulp": 20_000}


def objective(metric: np.ndarray, accuracy: np.ndarray, zeta: float) -> np.ndarray:
    """The (N, K) per-assignment cost zeta * e_hat - (1 - zeta) * a_hat (see the module docstring)."""
    if not 0.0 <= zeta <= 1.0 or math.isnan(zeta):
        raise GreenlaneError(f"zeta must be in [0, 1] (0: accuracy only, 1: energy/carbon only), got {zeta}")
    metric = np.asarray(metric, dtype=float)
    if not np.all(np.isfinite(metric)) or np.any(metric < 0):
        raise GreenlaneError("predicted energy/carbon must be finite and >= 0; check the candidates' energy models")
    spread = metric - metric.min(axis=1, keepdims=True)
    scale = spread.max(axis=1).mean()
    e_hat = spread / scale if scale > 0 else spread
    acc = np.asarray(accuracy, dtype=float)
    a_range = acc.max() - acc.min()
    a_hat = (acc - acc.min()) / a_range if a_range > 0 else np.zeros_like(acc)
    w_e, w_a = max(zeta, TIE_BREAK), max(1.0 - zeta, TIE_BREAK)
    return w_e * e_hat - w_a * a_hat[None, :]


def count_bounds(n: int, min_share, max_share, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-candidate (lo, hi) query counts from shares; a GreenlaneError naming the conflict if infeasible.

    lo = ceil(min_share * n), hi = floor(max_share * n): whole queries, never looser than asked.
    """
    lo = np.ceil(np.asarray(min_share, dtype=float) * n - 1e-9).astype(np.int64)
    hi = np.floor(np.asarray(max_share, dtype=float) * n + 1e-9).astype(np.int64)
    for name, l, h in zip(names, lo, hi, strict=True):
        if l > h:
            raise GreenlaneError(
                f"infeasible shares: candidate {name} must serve at least {l} and at most {h} of {n} queries"
            )
    if lo.sum() > n:
        raise GreenlaneError(
            f"infeasible shares: the minimum shares add up to {lo.sum()} queries but the workload has only {n} "
            f"({', '.join(f'{nm} >= {l}' for nm, l in zip(names, lo) if l)}); lower min_share"
        )
    if hi.sum() < n:
        raise GreenlaneError(
            f"infeasible shares: the maximum shares add up to {hi.sum()} queries but the workload has {n} "
            f"({', '.join(f'{nm} <= {h}' for nm, h in zip(names, hi))}); raise max_share or add candidates"
        )
    return lo, hi


def total(cost: np.ndarray, assign: np.ndarray) -> float:
    return float(cost[np.arange(len(assign)), assign].sum())


def solve_fast(cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, time_limit_s: float | None = None) -> np.ndarray:
    """Optimal assignment (candidate index per query) by the grouped transportation LP."""
    n, k = cost.shape
    deadline = _Deadline(time_limit_s, "fast", n)
    greedy = cost.argmin(axis=1)
    counts = np.bincount(greedy, minlength=k)
    if np.all(counts >= lo) and np.all(counts <= hi):
        return greedy  # the unconstrained optimum already respects the shares
    rows, inverse, supply = np.unique(cost, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    flow = _transport(rows, supply, lo, hi, deadline)
    assign = np.empty(n, dtype=np.int64)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(supply)])
    for g in range(len(rows)):  # hand each group's integral flow to its queries, in query order
        members = order[starts[g]:starts[g + 1]]
        assign[members] = np.repeat(np.arange(k), flow[g])
    return assign


def _transport(rows: np.ndarray, supply: np.ndarray, lo: np.ndarray, hi: np.ndarray,
               deadline: _Deadline) -> np.ndarray:
    from scipy import sparse
    from scipy.optimize import linprog

    g, k = rows.shape
    # variables y[g, k] flattened row-major; group g's flows sum to its supply
    a_eq = sparse.kron(sparse.eye(g), np.ones((1, k)), format="csr")
    per_cand = sparse.kron(np.ones((1, g)), sparse.eye(k), format="csr")
    a_ub = sparse.vstack([per_cand, -per_cand], format="csr")
    b_ub = np.concatenate([hi, -lo]).astype(float)
    for method in ("highs-ipm", "highs-ds"):  # crossover's vertex is integral; the simplex is the fallback
        res = linprog(rows.ravel(), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=supply.astype(float),
                      bounds=(0, None), method=method, options=deadline.highs_options())
        if res.status == 2:
            raise GreenlaneError("infeasible shares: no assignment serves every query within the candidates' shares")
        if res.status == 1 and deadline.limit_s is not None:  # iteration or time limit; no iteration limit is set
            raise deadline.hit()
        if res.status != 0:
            raise RuntimeError(f"HiGHS failed on the routing LP: {res.message}")
        flow = res.x.reshape(g, k)
        rounded = np.round(flow).astype(np.int64)
        # total unimodularity guarantees an integral vertex; a fractional one means crossover did not finish
        if np.abs(flow - rounded).max() <= 1e-6 and np.all(rounded.sum(axis=1) == supply):
            return rounded
    raise RuntimeError("routing LP returned a fractional solution; the transportation structure was violated")


def solve_pulp(cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, time_limit_s: float | None = None,
               threads: int = 1) -> np.ndarray:
    """Optimal assignment by the paper's MILP (binary x[i, k]) with CBC through PuLP."""
    import warnings

    import pulp

    n, k = cost.shape
    deadline = _Deadline(time_limit_s, "pulp", n)
    prob = pulp.LpProblem("greenlane_route", pulp.LpMinimize)
    x = [[prob.add_variable(f"x_{i}_{j}", 0, 1, cat=pulp.LpBinary) for j in range(k)] for i in range(n)]
    prob += pulp.LpAffineExpression((x[i][j], float(cost[i, j])) for i in range(n) for j in range(k))
    for i in range(n):
        prob += pulp.LpAffineExpression((x[i][j], 1.0) for j in range(k)) == 1, f"serve_{i}"
    for j in range(k):
        served = pulp.LpAffineExpression((x[i][j], 1.0) for i in range(n))
        prob += served >= int(lo[j]), f"min_share_{j}"
        prob += served <= int(hi[j]), f"max_share_{j}"
    with warnings.catch_warnings():
        # PuLP 3.3 deprecates the CBC binary it bundles in favour of a separate install (PuLP 4); the bundled
        # one is what pyproject pins and what runs offline, so it is used here on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=deadline.remaining(), threads=threads)
        status = pulp.LpStatus[prob.solve(solver)]
    if status == "Infeasible":
        raise GreenlaneError("infeasible shares: no assignment serves every query within the candidates' shares")
    stopped = status == "Not Solved" or prob.sol_status == pulp.LpSolutionIntegerFeasible
    if stopped and deadline.limit_s is not None:
        raise deadline.hit()  # CBC stopped on its time limit, with no solution or one not proven optimal
    if status != "Optimal":
        raise RuntimeError(f"CBC did not reach an optimum (status {status})")
    values = np.array([[x[i][j].value() or 0.0 for j in range(k)] for i in range(n)])
    return values.argmax(axis=1)


SOLVERS = {"fast": solve_fast, "pulp": solve_pulp}


def solve(cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, solver: str = "fast",
          time_limit_s: float | None = None) -> tuple[np.ndarray, float]:
    """(assignment, seconds the solver took) with the named solver, in at most `time_limit_s` seconds."""
    if solver not in SOLVERS:
        raise GreenlaneError(f"unknown solver {solver!r}; choose one of: {', '.join(SOLVERS)}")
    check_size(len(cost), solver)
    t0 = time.perf_counter()
    assign = SOLVERS[solver](cost, lo, hi, time_limit_s=time_limit_s)
    return assign, time.perf_counter() - t0


def size_hint(solver: str) -> str:
    """What to do about a workload too large for `solver`, naming its limit and the option."""
    other = "use --solver fast (up to {:,})".format(MAX_QUERIES["fast"]) if solver == "pulp" else \
        "route it in parts of at most that many queries"
    return f"--solver {solver} routes at most {MAX_QUERIES[solver]:,} queries per run (MAX_QUERIES); {other}"


def check_size(n: int, solver: str) -> None:
    if n > MAX_QUERIES[solver]:
        raise GreenlaneError(f"the workload has {n:,} queries, but {size_hint(solver)}")


class _Deadline:
    """One solve's time budget; `hit()` is the error to raise when a solver stops on it."""

    def __init__(self, limit_s: float | None, solver: str, size: int):
        self.limit_s, self.solver, self.size = limit_s, solver, size
        self.t0 = time.monotonic()

    def remaining(self) -> float | None:
        if self.limit_s is None:
            return None
        left = self.limit_s - (time.monotonic() - self.t0)
        if left <= 0:  # building the model took the whole budget
            raise self.hit()
        return left

    def highs_options(self) -> dict:
        left = self.remaining()
        return {} if left is None else {"time_limit": left}

    def hit(self) -> GreenlaneError:
        hint = "raise --time-limit" + (", use --solver fast" if self.solver == "pulp" else "") + \
            " or route fewer queries"
        return GreenlaneError(f"the {self.solver} solver hit its time limit of {self.limit_s:g} s (--time-limit) "
                              f"on {self.size:,} queries; {hint}")
