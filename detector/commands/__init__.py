"""``cramp-detector`` sub-commands, one module each. Adding a command = adding a module to COMMANDS.

Each module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

from types import ModuleType

from . import check_config, demo, detect, serve, train

COMMANDS: tuple[ModuleType, ...] = (demo, serve, detect, train, check_config)
