"""Energy-optimal routing of a query workload across served variants (Wilkins et al., HotCarbon '24).

Each query i, with its input and output token counts, goes to exactly one candidate k (a variant on a
target). With per-candidate workload models E_k(tin, tout) and runtime_k(tin, tout) and task accuracies
a_k, the router minimizes

    sum_i sum_k x_ik * (zeta * e_ik - (1 - zeta) * a_k)      (both terms normalized, see solve.py)

subject to sum_k x_ik = 1 for every query and share bounds lo_k <= sum_i x_ik <= hi_k per candidate
(the paper's gamma constraints). zeta = 0 serves accuracy only, zeta = 1 energy (or carbon) only.

- workload.py    queries as (tin, tout): CSV in and out, and a seeded synthetic generator
- candidates.py  the candidates, from a JSON file or from an MLflow run; their cost matrices
- solve.py       the objective, the share bounds, the PuLP/CBC MILP and the fast exact LP
- evaluate.py    routing summaries, baselines (round-robin, random, single-model), trade-off curves
"""
