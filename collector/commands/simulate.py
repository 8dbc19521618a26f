"""``cramp-collector simulate``: publish a simulated night over MQTT and write its ground truth."""

from __future__ import annotations

import argparse
import logging
import time

from crampwatch.cli import non_negative_float, non_negative_int, output_file, positive_float

log = logging.getLogger(__name__)

NAME = "simulate"
HELP = "publish a simulated night (physiological sEMG + ACC with cramps, spasms and look-alikes)"


def add_arguments(sim: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import PUBLISH_FIELDS, CollectorSettings
    from ..sources import parse_speed

    sim.add_argument(
        "--duration", type=positive_float, default=1200.0, metavar="SECONDS", help="night length (default 1200)"
    )
    sim.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="FACTOR",
        help="1 = real time, 60 = 60x, max = as fast as the broker takes it",
    )
    sim.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same night")
    sim.add_argument(
        "--truth",
        type=output_file,
        metavar="FILE",
        help="write the true events as CSV type,onset_s,offset_s,subtype",
    )
    sim.add_argument(
        "--density", type=non_negative_float, default=1.0, help="event density multiplier (1 = realistic night)"
    )
    sim.add_argument(
        "--frame-s", type=positive_float, default=0.25, help="seconds of samples per MQTT frame (default 0.25)"
    )
    sim.add_argument(
        "--start-ns", type=non_negative_int, default=None, help="device time of the first sample (default: now)"
    )
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings_mod.add_arguments(sim, CollectorSettings, fields=PUBLISH_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod
    from crampwatch.mqtt import make_client
    from crampwatch.recording import write_annotations
    from crampwatch.simulate import Night

    from ..config import CollectorSettings
    from ..publisher import FramePublisher
    from ..relay import Feed, relay
    from ..sources import SimulatedSource

    cfg = settings_mod.load(CollectorSettings, args)

    night = Night(args.duration, args.seed, event_density=args.density)
    if args.truth:
        write_annotations(args.truth, night.annotations)
        log.info("truth: %d annotations written to %s", len(night.annotations), args.truth)
    p = night.params
    log.info(
        "simulated night: %.0f s, EMG %g Hz x %d ch, ACC %g Hz, gain x%.2f, floor %.1f uV, mains %g Hz",
        args.duration,
        p.emg_rate_hz,
        p.n_emg_channels,
        p.acc_rate_hz,
        p.gain,
        p.noise_floor_uv,
        p.mains_hz,
    )
    start_ns = args.start_ns if args.start_ns is not None else time.time_ns()
    client = make_client(cfg.mqtt_url, cfg.mqtt_client_id, access=cfg.mqtt_access)
    publisher = FramePublisher(
        client, cfg.device_prefix, cfg.patient, cfg.device, confirm=cfg.confirm, confirm_window=cfg.confirm_window
    )
    source = SimulatedSource(night, frame_s=args.frame_s, start_ns=start_ns)
    relay(
        [Feed(source, publisher, start_ns)],
        speed=args.speed,
        progress_s=None if args.no_progress else args.duration,
        progress_label="simulated night",
    )
    log.info(
        "published %d frames (%.1f MB), all acknowledged by the broker",
        publisher.stats.published,
        publisher.stats.bytes / 1e6,
    )
    return 0
