"""``cramp-collector replay``: publish recording files over MQTT exactly as live devices would.

    cramp-collector replay night.edf --patient p07 --speed max
    cramp-collector replay left.edf right.edf --patient p07 --speed 10     # two devices: left, right

Why: a researcher's recording then goes through the live service (``cramp-detector serve``, dashboards,
InfluxDB) unchanged, and the live path can be checked against offline detection on the same file: the
frames carry float64 samples, so replay and ``cramp-detector detect`` see the same numbers (see
:mod:`collector.sources.replay`).

Several files are several devices of one patient, replayed **at the same time** (each from its own
start), one MQTT connection each; the device id is the file stem (``night-2.edf`` -> ``night-2``), or
``--device`` for a single file. Device times come from the file's start (EDF header; a start without
time zone is taken as UTC), else 0, or ``--start-ns``. Every file is read into memory first (a night at
2 kHz x 2 channels is about 0.5 GB as float64), so replay a few files at a time; for a cohort use
``cramp-detector batch``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crampwatch.cli import input_file, non_negative_int, positive_float
from crampwatch.errors import ConfigError

log = logging.getLogger(__name__)

NAME = "replay"
HELP = "publish recording files (EDF, BDF, CSV, XDF, ...) over MQTT as live devices would"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import PUBLISH_FIELDS, CollectorSettings
    from ..sources.base import parse_speed
    from ..sources.replay import DEFAULT_FRAME_S

    parser.add_argument(
        "files", nargs="+", type=input_file, metavar="FILE", help="recording(s); several = several devices"
    )
    parser.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="FACTOR",
        help="1 = real time (default), 60 = 60x, max = as fast as the broker takes it",
    )
    parser.add_argument(
        "--frame-s",
        type=positive_float,
        default=DEFAULT_FRAME_S,
        help=f"seconds of samples per MQTT frame (default {DEFAULT_FRAME_S})",
    )
    parser.add_argument(
        "--start-ns",
        type=non_negative_int,
        default=None,
        help="device time of the first sample (default: the file's start, or 0)",
    )
    parser.add_argument("--format", dest="fmt", help="file format name (default: from the file suffix)")
    parser.add_argument("--emg", action="append", metavar="LABEL", help="EMG channel label (repeatable)")
    parser.add_argument("--acc", action="append", metavar="LABEL", help="accelerometer channel label (3 times)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings_mod.add_arguments(parser, CollectorSettings, fields=PUBLISH_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod
    from crampwatch.formats import read_recording
    from crampwatch.mqtt import make_client

    from ..config import CollectorSettings
    from ..publisher import FramePublisher
    from ..relay import Feed, relay
    from ..sources.replay import ReplaySource, start_ns_of

    cfg = settings_mod.load(CollectorSettings, args)
    devices = _devices(args)
    sources = []
    for path, device in zip(args.files, devices, strict=True):
        rec = read_recording(path, fmt=args.fmt, emg=args.emg, acc=args.acc)
        sources.append(ReplaySource(rec, args.frame_s, start_ns_of(rec, args.start_ns)))
        log.info(
            "%s -> %s/%s: %.1f s, EMG %g Hz x %d, ACC %s",
            path,
            cfg.patient,
            device,
            rec.duration_s,
            rec.emg.rate_hz,
            len(rec.emg.channel_names),
            f"{rec.acc.rate_hz:g} Hz" if rec.acc else "none",
        )
    feeds = []
    for source, device in zip(sources, devices, strict=True):
        client_id = f"{cfg.client_id}-{device}" if cfg.client_id and len(devices) > 1 else cfg.client_id
        client = make_client(cfg.mqtt_url, client_id or f"cramp-replay-{cfg.patient}-{device}", access=cfg.mqtt_access)
        feeds.append(
            Feed(
                source,
                FramePublisher(
                    client,
                    cfg.device_prefix,
                    cfg.patient,
                    device,
                    confirm=cfg.confirm,
                    confirm_window=cfg.confirm_window,
                ),
                source.start_ns,
            )
        )
    total_s = max(s.recording.duration_s for s in sources)
    relay(feeds, speed=args.speed, progress_s=None if args.no_progress else total_s, progress_label="replay")
    frames = sum(f.publisher.stats.published for f in feeds)
    mb = sum(f.publisher.stats.bytes for f in feeds) / 1e6
    log.info("replayed %d file(s): %d frames (%.1f MB), all acknowledged by the broker", len(sources), frames, mb)
    return 0


def _devices(args: argparse.Namespace) -> list[str]:
    from crampwatch.topics import check_id

    from ..sources.replay import device_id_for

    if args.device is not None:
        if len(args.files) > 1:
            raise ConfigError("--device names one device; with several files each file's stem is its device id")
        return [check_id(args.device, "--device")]
    devices = [device_id_for(Path(f).name.split(".")[0]) for f in args.files]
    if len(set(devices)) < len(devices):
        raise ConfigError(f"two files would be the same device {devices}; rename them so their stems differ")
    return devices
