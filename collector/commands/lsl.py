"""``cramp-collector lsl``: publish a Lab Streaming Layer EMG (+ACC) stream over MQTT as a device.

    cramp-collector lsl --stream "Delsys EMG" --acc-stream "Delsys ACC" --patient p07 --device lab1

Runs until Ctrl-C or SIGTERM (or ``--duration`` seconds of EMG), then sends the buffered samples with the
end-of-stream flag, so the detector closes the night. See :mod:`collector.sources.lsl` for how channels
and device times are taken from LSL.
"""

from __future__ import annotations

import argparse
import logging

from crampwatch.cli import positive_float

log = logging.getLogger(__name__)

NAME = "lsl"
HELP = "publish a Lab Streaming Layer EMG/ACC stream over MQTT as a live device (until Ctrl-C)"

#: A live stream's last frames are few: a broker that has not taken them within this long is not coming.
FLUSH_TIMEOUT_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import PUBLISH_FIELDS, CollectorSettings

    parser.add_argument("--stream", required=True, metavar="NAME", help="LSL stream name with the EMG channels")
    parser.add_argument("--acc-stream", metavar="NAME", help="LSL stream with the accelerometer (default: --stream)")
    parser.add_argument("--emg", action="append", metavar="LABEL", help="EMG channel label (repeatable)")
    parser.add_argument("--acc", action="append", metavar="LABEL", help="accelerometer channel label (3 times)")
    parser.add_argument(
        "--frame-s", type=positive_float, default=0.25, help="seconds of samples per MQTT frame (default 0.25)"
    )
    parser.add_argument(
        "--duration", type=positive_float, default=None, metavar="SECONDS", help="stop after this much EMG"
    )
    parser.add_argument(
        "--resolve-timeout", type=positive_float, default=10.0, metavar="SECONDS", help="wait for the stream"
    )
    settings_mod.add_arguments(parser, CollectorSettings, fields=PUBLISH_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod
    from crampwatch.mqtt import make_client

    from ..config import CollectorSettings
    from ..publisher import FramePublisher
    from ..relay import Feed, relay
    from ..sources.lsl import LslSource

    cfg = settings_mod.load(CollectorSettings, args)
    source = LslSource(
        args.stream,
        args.acc_stream,
        frame_s=args.frame_s,
        duration_s=args.duration,
        resolve_timeout_s=args.resolve_timeout,
        emg=args.emg,
        acc=args.acc,
    )
    source.open()  # a missing or unusable stream is reported before anything connects
    client = make_client(cfg.mqtt_url, cfg.mqtt_client_id, access=cfg.mqtt_access)
    publisher = FramePublisher(
        client, cfg.device_prefix, cfg.patient, cfg.device, confirm=cfg.confirm, confirm_window=cfg.confirm_window
    )
    log.info("streaming LSL %r to %s/%s (Ctrl-C ends the stream)", args.stream, cfg.patient, cfg.device)
    try:
        relay([Feed(source, publisher)], flush_timeout_s=FLUSH_TIMEOUT_S)
    finally:
        source.close()
    log.info("published %d frames", publisher.stats.published)
    return 0
