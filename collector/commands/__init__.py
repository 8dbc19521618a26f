"""``cramp-collector`` sub-commands, one module each. Adding a command = adding a module to COMMANDS.

Each module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from . import check_config, lsl, profiles, record, replay, run, scan, simulate

COMMANDS: tuple[ModuleType, ...] = (simulate, replay, record, lsl, run, scan, profiles, check_config)


def add_commands(parser: argparse.ArgumentParser, commands: tuple[ModuleType, ...]) -> None:
    """One sub-command per module (``NAME``, ``HELP``, ``add_arguments``, ``run``); used by both CLIs."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
