"""`greenlane rollback`: restore a target's previous champion."""

from __future__ import annotations

import json

from tasks.commands import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser("rollback", help="move champion-<target> back to the version it held before the last promotion")
    p.add_argument("--target", required=True, help="target whose champion to restore")
    add_config_args(p, "to find the registry")
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
