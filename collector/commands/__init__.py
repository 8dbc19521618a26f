"""``cramp-collector`` sub-commands, one module each. Adding a command = adding a module to COMMANDS.

Each module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

from types import ModuleType

from . import check_config, lsl, profiles, provision, record, replay, run, scan, simulate

COMMANDS: tuple[ModuleType, ...] = (simulate, replay, record, lsl, run, scan, profiles, provision, check_config)
