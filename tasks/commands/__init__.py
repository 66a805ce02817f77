"""Subcommands of the `greenlane` CLI, one module each (see tasks/cli.py)."""


def add_config_args(parser, purpose: str = "") -> None:
    """`--config FILE` and repeatable `--set KEY=VALUE`, as every config-reading command takes them.

    `purpose` says what the config is for in this command (e.g. "to find the registry").
    """
    suffix = f", {purpose}" if purpose else ""
    parser.add_argument("--config", help=f"YAML config{suffix} (default: configs/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set eval.limit=50 (repeatable; values parsed as YAML)")
