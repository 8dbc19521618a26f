"""``cramp-detector demo``: a simulated night through the whole pipeline, events beside the truth."""

from __future__ import annotations

import argparse
import logging

from crampwatch.cli import non_negative_float, positive_float, speed

NAME = "demo"
HELP = "run a simulated night through the whole pipeline (collector -> MQTT -> detector) and score it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import DEMO_FIELDS, DetectorSettings

    parser.add_argument(
        "--duration", type=positive_float, default=1200.0, metavar="SECONDS", help="night length (default 1200)"
    )
    parser.add_argument("--speed", type=speed, default="max", help="simulation speed: a factor, or 'max' (default)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated night (default 7)")
    parser.add_argument(
        "--density", type=non_negative_float, default=3.0, help="event density (default 3: a busy night)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings_mod.add_arguments(parser, DetectorSettings, fields=DEMO_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod

    from ..config import DetectorSettings, load_settings, open_model
    from ..demo import run_demo

    cfg = load_settings(args)
    open_model(cfg, args)  # a bad model fails before a broker and a simulator are started
    logging.getLogger().setLevel(logging.WARNING)
    return run_demo(
        cfg,
        duration_s=args.duration,
        speed=args.speed,
        seed=args.seed,
        density=args.density,
        # A broker named anywhere (flag, CRAMP_MQTT_URL or the --config file) is used; else one is started.
        mqtt_configured=settings_mod.is_set(DetectorSettings, "mqtt_url", args),
        influx_configured=bool(cfg.influx_url),
        progress=not args.no_progress,
    )
