"""``cramp-detector serve``: subscribe to MQTT frames and write events until stopped."""

from __future__ import annotations

import argparse
import logging

from crampwatch import settings as settings_mod

from ..config import DetectorSettings

NAME = "serve"
HELP = "subscribe to the wearables' MQTT frames and write events (runs until stopped)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, DetectorSettings)


def run(args: argparse.Namespace) -> int:
    from ..model import load_model
    from ..service import DetectorService

    cfg = settings_mod.load(DetectorSettings, args)
    logging.getLogger().setLevel(cfg.log_level)
    DetectorService(cfg, load_model(cfg.model)).run_forever()
    return 0
