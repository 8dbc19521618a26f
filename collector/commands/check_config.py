"""``cramp-collector check-config``: validate the settings and print them."""

from __future__ import annotations

import argparse

from crampwatch import settings as settings_mod

from ..config import CollectorSettings

NAME = "check-config"
HELP = "validate the settings (flags, CRAMP_* environment, --config file) and print them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, CollectorSettings)


def run(args: argparse.Namespace) -> int:
    cfg = settings_mod.load(CollectorSettings, args)
    for name, value in cfg.model_dump().items():
        print(f"{name} = {value!r}")
    return 0
