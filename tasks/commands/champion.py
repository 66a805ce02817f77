"""`greenlane champion`: the promoted variant per target, with its metrics next to the baseline's."""

from __future__ import annotations

import json

from tasks.commands import add_config_args
from tasks.errors import GreenlaneError


def add_parser(sub) -> None:
    p = sub.add_parser("champion", help="show the champion of each target from the MLflow registry")
    p.add_argument("--target", help="only this target")
    add_config_args(p, "to find the registry")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from tasks.config import load_config
    from tasks.tracking.queries import champion_report, registry_location

    cfg = load_config(args.config, args.overrides)
    uri, name = registry_location(cfg)
    targets = [args.target] if args.target else list(cfg.targets)
    report = {t: champion_report(uri, name, t) for t in targets}
    if all(v is None for v in report.values()):
        raise GreenlaneError(f"no champion for {', '.join(targets)} in registered model {name!r} at {uri}; run `greenlane run` first")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for target, info in report.items():
            if info is None:
                print(f"{target}: no champion")
                continue
            print(f"{target}: {info['registered_model']} version {info['version']} = {info['variant']}")
            for key in ("gco2e_per_1k_tokens", "energy_j_per_1k_tokens", "accuracy", "latency_p95_ms"):
                print(f"  {key:24s} {info['metrics'].get(key, float('nan')):10.4g}   baseline {info['baseline_metrics'].get(key, float('nan')):10.4g}")
    return 0
