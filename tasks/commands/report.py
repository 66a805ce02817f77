"""`greenlane report`: a self-contained HTML report of one pipeline run, its plots also logged to that run."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.commands import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write the fleet report (HTML with embedded plots) for a pipeline run from the MLflow store",
        description="Variant table, Pareto frontier per target, carbon breakdown, energy-model fits, what-if placement "
                    "and routing curves of one pipeline run; the plots and the HTML are also logged to that run "
                    "under `report/`.",
    )
    p.add_argument("--run", dest="run_id", help="parent (pipeline) run id (default: the latest run that finished promotion)")
    p.add_argument("--out", required=True, help="directory for report.html and the PNGs")
    p.add_argument("--workload", help="workload CSV (tin, tout) for the routing curves (default: synthetic, within "
                                      "the fitted token ranges)")
    p.add_argument("--objective", choices=["energy", "carbon"], default="energy", help="what the routing curves minimize")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the MLflow run")
    add_config_args(p, "to find the MLflow store")
    p.add_argument("--json", action="store_true", help="print {html, pngs, run_id} as JSON")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from tasks.config import load_config
    from tasks.report.build import build
    from tasks.report.collect import collect
    from tasks.routing import workload
    from tasks.tracking import runs
    from tasks.tracking.queries import experiment_location

    uri, experiment = experiment_location(load_config(args.config, args.overrides))
    out = Path(args.out)
    collected = collect(uri, experiment, args.run_id, out / "artifacts")
    work = workload.read_csv(args.workload) if args.workload else None
    result = build(collected, out, work, args.objective)
    run_id = collected["run"]["run_id"]
    if not args.no_log:
        for path in [*result["pngs"], result["html"]]:
            runs.log_artifact_file(uri, run_id, path, "report")
    summary = {"html": str(result["html"]), "pngs": [str(p) for p in result["pngs"]], "run_id": run_id,
               "logged_to_mlflow": not args.no_log}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"report for run {run_id}: {result['html']}")
        if not args.no_log:
            print(f"plots and report logged to run {run_id} under report/")
    return 0
