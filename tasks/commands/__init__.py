"""Subcommands of the `greenlane` CLI, one module each (see tasks/cli.py)."""
