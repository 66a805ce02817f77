"""`greenlane serve`: a target's champion behind an OpenAI-compatible API on 127.0.0.1, with live energy metrics.

Every flag is a `serve:` knob of the config (tasks/config/serve.py ServeConfig documents each); a flag given here
overrides the config, and is validated the same way. Stop the server with SIGTERM (or Ctrl-C): it closes its
last energy window and frees the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.commands import add_config_args

# flag -> serve knob, for the knobs that are flags too (the rest: --set serve.<knob>=...)
FLAGS = {
    "host": str, "port": int, "cache": str, "cache_size": int, "redis_url": str, "max_batch": int,
    "max_wait_ms": float, "max_queue": int, "max_tokens_limit": int, "max_prompt_chars": int, "api_key_env": str,
    "threads": int, "energy_window_s": float,
}


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a champion over an OpenAI-compatible HTTP API with Prometheus metrics",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alias", required=True,
                   help="champion-<target> (or champion: the default target): what is served, and whose device, "
                        "meter, region and hardware apply")
    p.add_argument("--model-uri", help="serve this version instead (models:/<name>/<version> or "
                                       "models:/<name>@<alias>), still as the alias's target")
    for knob, kind in FLAGS.items():
        p.add_argument(f"--{knob.replace('_', '-')}", dest=knob, type=kind, default=None,
                       help=f"serve.{knob}" + (" (choices: none, lru, redis)" if knob == "cache" else ""))
    p.add_argument("--batching", action=argparse.BooleanOptionalAction, default=None, help="serve.batching")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without an API key")
    p.add_argument("--pid-file", type=Path, help="write the server's PID here once the model is loaded (removed at exit)")
    add_config_args(p, "for the registry, the targets and the serve section")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from tasks.config import load_config
    from tasks.serving.server import serve_forever

    flags = {f"serve.{k}": getattr(args, k) for k in [*FLAGS, "batching"] if getattr(args, k) is not None}
    cfg = load_config(args.config, [*args.overrides, *(f"{k}={_yaml(v)}" for k, v in flags.items())])
    serve_forever(cfg, args.alias, args.model_uri, insecure=args.insecure, pid_file=args.pid_file)
    return 0


def _yaml(value) -> str:
    """A flag's value as the YAML scalar `--set` parses (strings quoted, so `--cache none` stays a string)."""
    import json

    return json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) \
        else str(value)
