"""``cramp-detector``: find cramps and spasms in live streams or recordings.

cramp-detector demo                       a simulated night end to end, events beside the truth
cramp-detector serve                      live: MQTT frames -> events -> InfluxDB / file / MQTT
cramp-detector detect night.edf --out events.csv
cramp-detector train                      fit the model on simulated nights, write models/ + card
cramp-detector check-config               validate settings and print them
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from pathlib import Path

from collector import settings as settings_mod
from collector.errors import CollectorError

from .config import DetectorSettings
from .errors import DetectorError
from .events import CSV_FIELDS
from .model import DEFAULT_MODEL

log = logging.getLogger("detector")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cramp-detector",
        description="Detect muscle cramps and spasms in sEMG + accelerometer streams and recordings.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a simulated night through the whole pipeline and score it")
    demo.add_argument(
        "--duration", type=float, default=1200.0, metavar="SECONDS", help="night length (default 1200)"
    )
    demo.add_argument("--speed", default="max", help="simulation speed: factor or 'max' (default max)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the simulated night (default 7)")
    demo.add_argument("--density", type=float, default=3.0, help="event density (default 3: a busy night)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings_mod.add_arguments(demo, DetectorSettings)

    serve = sub.add_parser("serve", help="subscribe to MQTT frames and write events (runs until stopped)")
    settings_mod.add_arguments(serve, DetectorSettings)

    detect = sub.add_parser("detect", help="detect events in a recording (EDF, EDF+, BDF, BDF+)")
    detect.add_argument("file", type=Path, help="recording to process")
    detect.add_argument("--out", type=Path, help="events CSV (default: print to stdout)")
    detect.add_argument(
        "--emg",
        action="append",
        metavar="LABEL",
        help="EMG channel label (repeatable; default: by unit/label)",
    )
    detect.add_argument(
        "--acc", action="append", metavar="LABEL", help="accelerometer channel label (give 3)"
    )
    detect.add_argument("--format", dest="fmt", help="file format name (default: from the suffix)")
    detect.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="model file (default: the shipped model)"
    )

    train = sub.add_parser("train", help="train the model on domain-randomised simulated nights")
    train.add_argument(
        "--out", type=Path, default=DEFAULT_MODEL, help=f"model file to write (default {DEFAULT_MODEL.name})"
    )
    train.add_argument("--nights", type=int, default=48, help="training nights (default 48)")
    train.add_argument(
        "--night-s", type=float, default=1200.0, help="length of each training night (default 1200)"
    )
    train.add_argument(
        "--density", type=float, default=3.0, help="event density of training nights (default 3)"
    )
    train.add_argument("--seed", type=int, default=1, help="master seed (default 1)")
    train.add_argument("--heldout-nights", type=int, default=16, help="held-out nights to score (default 16)")
    train.add_argument(
        "--heldout-s", type=float, default=1800.0, help="length of each held-out night (default 1800)"
    )
    train.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )

    chk = sub.add_parser("check-config", help="validate the settings and print them")
    settings_mod.add_arguments(chk, DetectorSettings)
    return parser


def _detect(args: argparse.Namespace) -> int:
    from collector.formats import read_recording

    from .model import load_model
    from .offline import detect_recording

    model = load_model(args.model)
    rec = read_recording(args.file, fmt=args.fmt, emg=args.emg, acc=args.acc)
    started = time.perf_counter()
    events = detect_recording(rec, model)
    elapsed = time.perf_counter() - started
    out = open(args.out, "w", newline="") if args.out else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        for e in events:
            writer.writerow(e.csv_row())
    finally:
        if args.out:
            out.close()
    print(
        f"{args.file}: {rec.duration_s / 3600:.2f} h, {len(events)} event(s) "
        f"({sum(e.type == 'cramp' for e in events)} cramp, {sum(e.type == 'spasm' for e in events)} spasm) "
        f"in {elapsed:.1f} s" + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig(
        nights=args.nights,
        night_s=args.night_s,
        density=args.density,
        seed=args.seed,
        heldout_nights=args.heldout_nights,
        heldout_s=args.heldout_s,
        workers=args.workers,
    )
    card = train(args.out, cfg)
    print(card["heldout"]["table"])
    print(f"model written to {args.out} (card {args.out.with_suffix('.card.json')})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "detect":
            return _detect(args)
        if args.command == "train":
            return _train(args)
        cfg = settings_mod.load(DetectorSettings, args)
        logging.getLogger().setLevel(cfg.log_level)
        if args.command == "check-config":
            for name, value in cfg.model_dump().items():
                shown = "***" if "token" in name and value else value
                print(f"{name} = {shown!r}")
            return 0
        if args.command == "demo":
            from .demo import run_demo

            logging.getLogger().setLevel(logging.WARNING)
            mqtt_set = bool(args.mqtt_url or os.environ.get("CRAMP_MQTT_URL"))
            influx_set = bool(cfg.influx_url)
            return run_demo(
                cfg,
                duration_s=args.duration,
                speed=args.speed,
                seed=args.seed,
                density=args.density,
                mqtt_configured=mqtt_set,
                influx_configured=influx_set,
                progress=not args.no_progress,
            )
        from .model import load_model
        from .service import DetectorService

        DetectorService(cfg, load_model(cfg.model)).run_forever()
        return 0
    except (DetectorError, CollectorError) as err:
        print(f"cramp-detector: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
