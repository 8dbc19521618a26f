"""``cramp-detector detect``: events of a recording, by the same code the live service runs."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter

from crampwatch.cli import input_file, output_file
from crampwatch.errors import ConfigError, CrampWatchError

NAME = "detect"
HELP = "detect cramps, spasms and PLMs in a recording (EDF/BDF, CSV, XDF, BioSPPy or UCI text) and write them as CSV"

#: The order of the event counts in the summary line (every type the detector writes).
SUMMARY_TYPES = ("cramp", "spasm", "plm")


def _id(text: str) -> str:
    from crampwatch.topics import check_id

    try:
        return check_id(text, "id")
    except CrampWatchError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import MODEL_FIELDS, DetectorSettings

    parser.add_argument("file", type=input_file, help="recording to process")
    parser.add_argument("--out", type=output_file, help="events CSV (default: print to stdout)")
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
    parser.add_argument(
        "--patient", type=_id, metavar="ID", help="patient pseudonym for the CSV's patient column (default: empty)"
    )
    parser.add_argument(
        "--device", type=_id, metavar="ID", help="device id for the CSV's device column (default: the file name stem)"
    )
    settings_mod.add_arguments(parser, DetectorSettings, fields=MODEL_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch.formats import open_recording

    from ..config import load_settings, open_model
    from ..events import CSV_FIELDS
    from ..offline import run_recording

    if args.out and args.out.resolve() == args.file.resolve():
        raise ConfigError(f"--out {args.out} is the recording itself; write the events to a .csv file")
    model = open_model(load_settings(args), args)
    # EDF/BDF stay in the file and are read block by block as detection goes: memory is flat in the
    # night's length. Other formats are read whole.
    with open_recording(args.file, fmt=args.fmt, emg=args.emg, acc=args.acc) as rec:
        started = time.perf_counter()
        device = args.device or args.file.stem
        events = run_recording(rec, model, patient=args.patient or "", device=device).events
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
    counts = Counter(e.type for e in events)
    by_type = ", ".join(f"{counts.pop(t, 0)} {t}" for t in SUMMARY_TYPES)
    by_type += "".join(f", {n} {t}" for t, n in sorted(counts.items()))  # a type added later still shows
    print(
        f"{args.file}: {rec.duration_s / 3600:.2f} h, {len(events)} event(s) ({by_type}) in {elapsed:.1f} s"
        + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0
