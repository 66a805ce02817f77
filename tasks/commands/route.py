"""`greenlane route`: assign a workload's queries to the served variants, trading energy (or carbon) for accuracy.

Candidates, by default, are what a user has deployed: the variants of the latest pipeline run (or
`--run`) that passed the gates and have a fitted energy model (benchmark.energy_grid). `--candidates FILE`
routes across any models instead: a JSON list of objects

    {"name": "bf16@cpu", "accuracy": 0.71, "energy_model": "bf16/energy_model.json",
     "energy_source": "rapl", "region": "QC", "hardware": "cpu", "pue": 1.1, "lifetime_years": 5,
     "min_share": 0.0, "max_share": 1.0}

with `energy_model` a file written by the benchmark or `greenlane energy-model fit --out` (relative to
the JSON file; `energy_key`/`runtime_key` pick the models inside, default energy_j and runtime_s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re

from tasks.commands import add_config_args
from tasks.errors import GreenlaneError

# Seconds one solve may take before route stops it: 10,000 queries take about a minute with pulp (README).
DEFAULT_TIME_LIMIT_S = 600.0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "route",
        help="route a workload across variants: minimize zeta*energy - (1-zeta)*accuracy under share limits",
        description="Energy-optimal routing (Wilkins et al., HotCarbon '24) over the fitted E(tin, tout) models of "
                    "the served variants; prints the routed totals next to round-robin, random and single-model.",
    )
    p.add_argument("--workload", required=True,
                   help="CSV with columns tin, tout (one row per query), or synthetic:N[:SEED] for a generated one")
    p.add_argument("--zeta", type=float, required=True, help="0: accuracy only ... 1: energy (or carbon) only")
    p.add_argument("--objective", choices=["energy", "carbon"], default="energy",
                   help="carbon prices each candidate's energy and busy time at its region and hardware")
    p.add_argument("--candidates", help="JSON list of candidates (default: the MLflow run's passing variants)")
    p.add_argument("--run", dest="run_id", help="pipeline run to take candidates from (default: the latest)")
    p.add_argument("--include-failing", action="store_true", help="also route to variants that failed a gate")
    p.add_argument("--min-share", type=float,
                   help="every candidate serves at least this fraction of queries (any value > 0: at least one query)")
    p.add_argument("--max-share", type=float, help="no candidate serves more than this fraction of queries")
    p.add_argument("--solver", choices=["fast", "pulp"], default="fast",
                   help="fast: exact transportation LP (HiGHS), up to 1,000,000 queries; pulp: the paper's MILP "
                        "with CBC (slower), up to 20,000")
    p.add_argument("--time-limit", type=_seconds, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                   help=f"stop a solve that takes longer, with an error (default: {DEFAULT_TIME_LIMIT_S:g}; "
                        "per zeta with --curve)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument("--curve", metavar="DIR",
                   help="also trace zeta = 0, 0.1, ..., 1: write DIR/routing_curve.json and DIR/routing_curves.png")
    add_config_args(p, "to find the MLflow store")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=handle)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def load_workload(spec: str, solver: str = "fast"):
    """The workload, refused before it is built or read in full when it is larger than `solver` takes."""
    from tasks.routing import solve, workload

    m = re.fullmatch(r"synthetic:(\d+)(?::(\d+))?", spec)
    if m:
        solve.check_size(int(m.group(1)), solver)
        return workload.synthetic(int(m.group(1)), seed=int(m.group(2) or 0))
    return workload.read_csv(spec, max_queries=solve.MAX_QUERIES[solver], too_many=f": {solve.size_hint(solver)}")


def store_candidates(args):
    import tempfile
    from pathlib import Path

    from tasks.config import load_config
    from tasks.report.collect import candidate_records, collect
    from tasks.routing.candidates import from_run_records, unique
    from tasks.tracking.queries import experiment_location

    uri, experiment = experiment_location(load_config(args.config, args.overrides))
    with tempfile.TemporaryDirectory() as tmp:  # models are read into memory before this goes
        collected = collect(uri, experiment, args.run_id, Path(tmp))
        cands = from_run_records(candidate_records(collected["records"], args.include_failing))
    if not cands:
        raise GreenlaneError(
            f"run {collected['run']['run_id']} has no passing variant with an energy model; run the pipeline with "
            "--set 'benchmark.energy_grid={tin: [16, 64, 256, 512], tout: [8, 32, 128]}' or pass --candidates FILE"
        )
    return unique(cands, f"run {collected['run']['run_id']}")


def handle(args) -> int:
    from tasks.routing import candidates, evaluate

    cands = candidates.load_json(args.candidates) if args.candidates else store_candidates(args)
    shares = {k: v for k, v in (("min_share", args.min_share), ("max_share", args.max_share)) if v is not None}
    if shares:
        cands = [candidates.check(dataclasses.replace(c, **shares), "--min-share/--max-share") for c in cands]
    work = load_workload(args.workload, args.solver)
    result = evaluate.route(work, cands, args.zeta, args.objective, args.solver, args.seed, args.time_limit)
    if args.curve:
        result["curve_files"] = write_curve(work, cands, args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_summary(result)
    return 0


def write_curve(work, cands, args) -> list[str]:
    from pathlib import Path

    from tasks.report.plots import routing_curves_plot
    from tasks.routing import evaluate

    out = Path(args.curve)
    out.mkdir(parents=True, exist_ok=True)
    curve = evaluate.tradeoff(work, cands, objective=args.objective, solver=args.solver, seed=args.seed,
                              time_limit_s=args.time_limit)
    (out / "routing_curve.json").write_text(json.dumps(curve, indent=2) + "\n")
    return [str(out / "routing_curve.json"), str(routing_curves_plot(curve, out / "routing_curves.png"))]


def print_summary(result: dict) -> None:
    w = result["workload"]
    print(f"{w['queries']} queries from {w['source']}; zeta={result['zeta']:g}, objective={result['objective']}, "
          f"solver={result['solver']} ({result['solve_s']:.2f} s)")
    print(f"{'assignment':<34} {'energy J':>12} {'gCO2e':>10} {'mean acc':>9} {'mean s':>9}  shares")
    rows = {"optimal routing": result["routed"], **result["baselines"]}
    for name, s in rows.items():
        shares = ", ".join(f"{k} {v:.0%}" for k, v in s["shares"].items() if v)
        print(f"{name:<34} {s['total_energy_j']:>12.4g} {s['total_gco2e']:>10.4g} {s['mean_accuracy']:>9.3f} "
              f"{s['mean_runtime_s']:>9.3g}  {shares}")
    sources = sorted(set(result["energy_sources"].values()))
    print(f"energy source(s) behind the models: {', '.join(sources)}"
          + ("  (MIXED measured and estimated: not like for like)" if result["mixed_energy_sources"] else ""))
    if result.get("curve_files"):
        print(f"trade-off over zeta written to {', '.join(result['curve_files'])}")
    outside = {k: v for k, v in result["extrapolated_share"].items() if v > 0}
    if outside:
        print("note: queries outside a model's fitted token range (extrapolated): "
              + ", ".join(f"{k} {v:.0%}" for k, v in outside.items()))
