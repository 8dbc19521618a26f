"""``cramp-detector`` sub-commands, one module each. Adding a command = adding a module to COMMANDS.

Each module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

from types import ModuleType

from . import annotate, batch, check_config, demo, detect, evaluate, report, serve, train

COMMANDS: tuple[ModuleType, ...] = (demo, serve, detect, batch, annotate, evaluate, train, report, check_config)
