"""``cramp-detector check-config``: validate the settings and print them (secrets masked)."""

from __future__ import annotations

import argparse

from crampwatch import settings as settings_mod

from ..config import DetectorSettings

NAME = "check-config"
HELP = "validate the settings (flags, CRAMP_* environment, --config file) and print them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, DetectorSettings)


def run(args: argparse.Namespace) -> int:
    cfg = settings_mod.load(DetectorSettings, args)
    for name, value in cfg.model_dump().items():
        shown = "***" if "token" in name and value else value
        print(f"{name} = {shown!r}")
    return 0
