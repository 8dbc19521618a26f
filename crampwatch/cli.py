"""What both command-line programs share: one sub-command per module, and one error-to-exit-code rule.

A command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; adding a command
means adding a module to the app's ``COMMANDS`` tuple.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from types import ModuleType

from .errors import CrampWatchError


def add_commands(parser: argparse.ArgumentParser, commands: tuple[ModuleType, ...]) -> None:
    """One sub-command per module (``NAME``, ``HELP``, ``add_arguments``, ``run``)."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(run=command.run)


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv``, run the chosen command, and turn a :class:`CrampWatchError` into one line and exit 2."""
    args = parser.parse_args(argv)
    level = (getattr(args, "log_level", None) or os.environ.get("CRAMP_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except CrampWatchError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
