"""``cramp-collector check-config``: validate the settings, then print them as a TOML file.

Checks the settings (flags, ``CRAMP_*`` environment, ``--config`` file: unknown keys and bad values are
errors), that the MQTT URL is well formed, and that the spool's folder can be written. It does not connect
to the broker or look for a sensor (``cramp-collector scan`` does).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crampwatch.errors import ConfigError

NAME = "check-config"
HELP = "validate the settings (flags, CRAMP_* environment, --config file) and print them as TOML --config reads back"

EPILOG = """\
The TOML goes to stdout, so 'cramp-collector check-config > collector.toml' gives a file to start from,
each setting under its description. Secrets are never printed: mqtt_url, when it holds a password, is
written as a comment with the password as ***. Loading the file back with --config therefore leaves it
out; keep it in the environment (CRAMP_MQTT_URL) or add it to a copy of the file that only the collector
can read."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import CollectorSettings

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    settings_mod.add_arguments(parser, CollectorSettings)


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod
    from crampwatch.settings import default_state_dir

    from ..config import CollectorSettings

    cfg = settings_mod.load(CollectorSettings, args)
    spool_dir = cfg.spool_path.expanduser().parent if cfg.spool_path else default_state_dir()
    problem = _unwritable(spool_dir)
    if problem:
        where = settings_mod.origin(CollectorSettings, "spool_path", args)
        raise ConfigError(f"spool folder {spool_dir} ({where}): {problem}")
    print(settings_mod.to_toml(cfg), end="")
    print(f"settings OK: broker {settings_mod.mask_url(cfg.mqtt_url)}, spool in {spool_dir}", file=sys.stderr)
    return 0


def _unwritable(folder: Path) -> str:
    """Why the spool cannot be created in ``folder`` (the spool creates missing folders), or ''."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file; set spool_path to a file in a folder"
    if not os.access(existing, os.W_OK):
        return f"{existing} is not writable by this user; set spool_path (or STATE_DIRECTORY) to a writable place"
    return ""
