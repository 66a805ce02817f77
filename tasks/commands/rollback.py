"""`greenlane rollback`: restore a target's previous champion."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("rollback", help="move champion-<target> back to the version it held before the last promotion")
    p.add_argument("--target", required=True, help="target whose champion to restore")
    p.add_argument("--config", help="YAML config, to find the registry (default: configs/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, as for `greenlane run`")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from tasks.config import load_config
    from tasks.errors import GreenlaneError
    from tasks.tracking.queries import registry_location
    from tasks.tracking.registry import rollback

    cfg = load_config(args.config, args.overrides)
    if args.target not in cfg.targets:
        raise GreenlaneError(f"unknown target {args.target!r}; targets: {', '.join(cfg.targets)}")
    uri, name = registry_location(cfg)
    print(json.dumps(rollback(uri, name, args.target, is_default=args.target == cfg.default_target)))
    return 0
