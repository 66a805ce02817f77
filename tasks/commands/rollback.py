"""`greenlane rollback`: restore a target's previous champion, one step back through its history."""

from __future__ import annotations

import json

from tasks.commands import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser("rollback", help="move champion-<target> back one step through its history of champions "
                                        "(each call goes one further back)")
    p.add_argument("--target", required=True, help="target whose champion to restore")
    p.add_argument("--skip-deleted", action="store_true",
                   help="step past earlier champions deleted from the registry instead of stopping at them")
    p.add_argument("--json", action="store_true", help="print JSON")
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
    is_default = args.target == cfg.default_target
    moved = rollback(uri, name, args.target, is_default=is_default, skip_deleted=args.skip_deleted)
    if args.json:
        print(json.dumps(moved))
        return 0
    aliases = f"{moved['alias']} and champion" if is_default else moved["alias"]
    print(f"{name}: {aliases} moved from version {moved['replaced'] or 'none'} back to version {moved['version']}")
    if moved["skipped_deleted"]:
        print(f"  skipped deleted versions: {', '.join(moved['skipped_deleted'])}")
    earlier = ", ".join(moved["history"]) or "none"
    print(f"  earlier champions left to roll back to (oldest first): {earlier}")
    return 0
