"""`greenlane energy-model fit`: fit E(tin, tout) or runtime(tin, tout) from a token-grid CSV."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "energy-model",
        help="fit workload energy/runtime models from a token-grid CSV",
        description="Workload energy models E(tin, tout) and runtime(tin, tout), chosen by cross-validated MdAPE.",
    )
    sub = parser.add_subparsers(dest="energy_model_command", required=True, metavar="ACTION")
    fit = sub.add_parser(
        "fit",
        help="fit one model per value of the CSV's `model` column",
        description="Reads columns tin, tout, the target and optionally model (one fit per model; `all` when absent).",
    )
    fit.add_argument("--csv", required=True, help="token-grid CSV with columns tin, tout, <target>[, model]")
    fit.add_argument("--target", default="energy_j", choices=["energy_j", "runtime_s"], help="column to model")
    fit.add_argument("--json", action="store_true", help="print a JSON object {model: {r2, cv_mdape, ...}}")
    fit.add_argument("--out", help="also save the fitted models (loadable by tasks.energy_model.load_models) here")
    fit.add_argument(
        "--compare-paper",
        action="store_true",
        help="add the seed paper's OLS fit (R^2, in-sample MdAPE, negative predictions) under `paper_ols`",
    )
    fit.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from tasks import energy_model

    models = energy_model.fit_csv(args.csv, args.target)
    report = {name: model.summary() for name, model in models.items()}
    if args.compare_paper:
        for name, (tin, tout, y) in energy_model.read_grid(args.csv, args.target).items():
            report[name]["paper_ols"] = energy_model.paper_baseline(tin, tout, y)
    if args.out:
        energy_model.save_models(models, args.out)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    unit = "J" if args.target == "energy_j" else "s"
    print(f"{'model':<24} {'form':<12} {'weights':<9} {'R^2':>7} {'cv MdAPE':>9} {'min pred':>10}")
    for name, model in models.items():
        print(
            f"{name:<24} {model.form:<12} {model.weighting:<9} {model.r2:>7.4f} "
            f"{model.cv_mdape:>8.1%} {model.min_prediction:>8.3g} {unit}"
        )
        if args.compare_paper:
            paper = report[name]["paper_ols"]
            print(
                f"{'  paper OLS':<24} {'paper':<12} {'none':<9} {paper['r2']:>7.4f} {paper['mdape']:>8.1%}"
                f" {paper['min_prediction']:>8.3g} {unit}  (MdAPE in-sample; {paper['negative_predictions']} negative)"
            )
    if args.out:
        print(f"saved to {args.out}")
    return 0
