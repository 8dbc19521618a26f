"""``cramp-detector detect``: events of a recording, by the same code the live service runs."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from ..events import CSV_FIELDS
from ..model import DEFAULT_MODEL

NAME = "detect"
HELP = "detect cramps, spasms and PLMs in a recording (EDF/BDF, CSV, XDF, BioSPPy or UCI text) and write them as CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="recording to process")
    parser.add_argument("--out", type=Path, help="events CSV (default: print to stdout)")
    parser.add_argument(
        "--emg",
        action="append",
        metavar="LABEL",
        help="EMG channel label (repeatable; default: found by unit/label)",
    )
    parser.add_argument(
        "--acc",
        action="append",
        metavar="LABEL",
        help="accelerometer channel label (give it 3 times: x, y, z)",
    )
    parser.add_argument("--format", dest="fmt", help="file format name (default: from the file suffix)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model file (default: the shipped model)")


def run(args: argparse.Namespace) -> int:
    from crampwatch.formats import read_recording

    from ..model import load_model
    from ..offline import detect_recording

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
