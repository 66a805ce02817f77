"""The `greenlane` command.

Each subcommand lives in its own module under `tasks.commands` and exposes
`add_parser(subparsers)`; that function sets `func` on its parser. Handlers
import heavy libraries (torch, airflow, mlflow) inside themselves so that
`greenlane --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tasks.errors import GreenlaneError

# One line per subcommand module; order is the order in --help.
COMMAND_MODULES = [
    "tasks.commands.run",
    "tasks.commands.champion",
    "tasks.commands.rollback",
    "tasks.commands.energy_model",
    "tasks.commands.carbon",
    "tasks.commands.route",
    "tasks.commands.report",
    "tasks.commands.trigger",
    "tasks.commands.serve",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenlane",
        description="Compress an LLM, benchmark its variants per target, promote the lowest-carbon one that passes the gates.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GreenlaneError as err:
        print(f"greenlane: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
