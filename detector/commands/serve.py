"""``cramp-detector serve``: subscribe to MQTT frames and write events until stopped."""

from __future__ import annotations

import argparse
import logging

NAME = "serve"
HELP = "subscribe to the wearables' MQTT frames and write events (runs until stopped)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import DetectorSettings

    settings_mod.add_arguments(parser, DetectorSettings)


def run(args: argparse.Namespace) -> int:
    from ..config import load_settings, open_model
    from ..service import DetectorService

    cfg = load_settings(args)
    logging.getLogger().setLevel(cfg.log_level)
    model = open_model(cfg, args)  # before connecting: a bad model must not look like a broker problem
    # Non-zero when the worker died: systemd or compose restarts a detector that stopped working.
    return DetectorService(cfg, model).run_forever()
