"""How fast is routing at scale, and how far is the fast solver from the paper's MILP?

Candidates: the seven LLMs of the real A100 token-grid measurements in shared/data/a100-energy-grid.csv
(Wilkins et al.), each with E(tin, tout) and runtime(tin, tout) fitted by tasks.energy_model. Their
accuracies below are ILLUSTRATIVE (ordered roughly by model size), not measured: they set the shape of the
trade-off, not the solve time. Shares: every model serves at least --min-share and at most --max-share of
the queries, so the constraints bind and the fast path (plain argmin) cannot be taken.

Workload: tasks.routing.workload.synthetic (log-normal lengths, medians 128 in / 192 out, seeded).

For each size it prints the fast solver's time (median of --repeats, grouping included) and the time to
build the cost matrices; where PuLP/CBC runs too (sizes in --pulp), its time and the optimality gap
(fast - pulp) / |pulp| of the objective. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/routing_scale.py [--queries 1000 10000] [--pulp 1000 10000] [--zetas 0.25 0.5 0.75]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from tasks import energy_model
from tasks.routing import evaluate, solve, workload
from tasks.routing.candidates import Candidate

GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "a100-energy-grid.csv"
# ILLUSTRATIVE accuracies, not measurements (see the module docstring).
ACCURACY = {"falcon-7b": 0.44, "Llama-2-7b-chat-hf": 0.47, "Mistral-7B-v0.1": 0.60, "Llama-2-13b-chat-hf": 0.54,
            "falcon-40b": 0.57, "Mixtral-8x7B-v0.1": 0.70, "Llama-2-70b-chat-hf": 0.64}


def load_candidates(grid: Path, min_share: float, max_share: float) -> list[Candidate]:
    energy = energy_model.fit_csv(grid, "energy_j")
    runtime = energy_model.fit_csv(grid, "runtime_s")
    return [Candidate(name=n, accuracy=ACCURACY[n], energy=energy[n], runtime=runtime[n],
                      energy_source="nvml (A100, shared/data)", hardware="a100", region="CISO",
                      min_share=min_share, max_share=max_share) for n in energy if n in ACCURACY]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=GRID)
    parser.add_argument("--queries", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--pulp", type=int, nargs="*", default=[1000, 10000], help="sizes PuLP/CBC also solves")
    parser.add_argument("--zetas", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--min-share", type=float, default=0.02)
    parser.add_argument("--max-share", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cands = load_candidates(args.grid, args.min_share, args.max_share)
    print(f"{len(cands)} candidates from {args.grid.name}; shares in [{args.min_share}, {args.max_share}]; "
          f"{os.cpu_count()} CPUs visible")
    print(f"{'queries':>8} {'zeta':>5} {'costs s':>8} {'fast s':>8} {'pulp s':>8} {'gap':>10}  "
          f"{'energy J (routed)':>18} {'mean acc':>8}")
    for n in args.queries:
        work = workload.synthetic(n, seed=args.seed)
        t0 = time.perf_counter()
        costs, lo, hi = evaluate.prepare(work, cands)
        costs_s = time.perf_counter() - t0
        for zeta in args.zetas:
            cost = solve.objective(costs["energy_j"], costs["accuracy"], zeta)
            times = []
            for _ in range(args.repeats):
                fast, seconds = solve.solve(cost, lo, hi, "fast")
                times.append(seconds)
            pulp_s, gap = "-", "-"
            if n in args.pulp:
                exact, seconds = solve.solve(cost, lo, hi, "pulp")
                ref = solve.total(cost, exact)
                pulp_s, gap = f"{seconds:.2f}", f"{(solve.total(cost, fast) - ref) / abs(ref):.1e}"
            s = evaluate.summarize(fast, costs, cands)
            print(f"{n:>8} {zeta:>5.2f} {costs_s:>8.3f} {statistics.median(times):>8.3f} {pulp_s:>8} {gap:>10}  "
                  f"{s['total_energy_j']:>18.4g} {s['mean_accuracy']:>8.3f}")


if __name__ == "__main__":
    main()
