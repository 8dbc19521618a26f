"""``cramp-detector annotate``: a copy of a recording with detected events as EDF+ annotations.

    cramp-detector detect night.edf --out events.csv
    cramp-detector annotate night.edf events.csv --out night-scored.edf
    cramp-detector annotate night.edf --out night-scored.edf     # detects the events itself (--model)

Why: any EDF viewer (EDFbrowser, Polyman, MNE, Sleep scoring software) then shows the detector's cramps
and spasms on the signal, so a clinician can check them without CrampWatch. The events file is what
``detect``/``batch`` write (``type,onset_s,offset_s,...``, extra columns ignored) or any CSV with
``type,onset_s,offset_s[,subtype]``. Without an events file, the events are detected here with the model
(``--model``, ``CRAMP_MODEL`` or ``--config``), as ``detect`` would. Annotation texts are ``cramp`` or
``spasm:clonus`` (read back by :func:`crampwatch.formats.edf.parse_annotation_text`).

The input may be any readable format (EDF, BDF, CSV, XDF, ...); the copy is EDF+ or BDF+ by the suffix
of ``--out``. Its samples are the input's, rounded to the new file's digital step (EDF+ 16 bit: peak /
32767 / 2; BDF+ 24 bit: 256 times finer), so write ``.bdf`` to keep a BDF's resolution. The input's own
annotations are kept unless ``--replace``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crampwatch.cli import input_file, output_file
from crampwatch.errors import ConfigError

log = logging.getLogger(__name__)

NAME = "annotate"
HELP = "write a copy of a recording (EDF+/BDF+) with detected events as annotations any EDF viewer shows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import MODEL_FIELDS, DetectorSettings

    parser.add_argument("file", type=input_file, help="the recording the events were detected in")
    parser.add_argument(
        "events",
        type=input_file,
        nargs="?",
        help="events CSV (from detect or batch: type,onset_s,offset_s,...); default: detect them with the model",
    )
    parser.add_argument("--out", type=_annotated_copy, required=True, help="the annotated copy, .edf or .bdf")
    parser.add_argument("--replace", action="store_true", help="drop the recording's own annotations")
    parser.add_argument("--format", dest="fmt", help="input file format name (default: from the file suffix)")
    parser.add_argument("--emg", action="append", metavar="LABEL", help="EMG channel label (repeatable)")
    parser.add_argument("--acc", action="append", metavar="LABEL", help="accelerometer channel label (3 times)")
    settings_mod.add_arguments(parser, DetectorSettings, fields=MODEL_FIELDS)


def _annotated_copy(text: str) -> Path:
    path = output_file(text)
    if path.suffix.lower() not in (".edf", ".bdf"):
        raise argparse.ArgumentTypeError(f"{text}: name the copy .edf (16 bit) or .bdf (24 bit)")
    return path


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from crampwatch.formats import read_recording
    from crampwatch.formats.edf import write_edf
    from crampwatch.recording import Annotation, read_annotations

    from ..config import load_settings, open_model

    if args.out.resolve() == args.file.resolve():
        raise ConfigError(f"--out {args.out} is the input file; write the annotated copy to another file")
    # The cheap checks first: bad settings, a wrong events file or model fail before the recording is read.
    cfg = load_settings(args)
    events = read_annotations(args.events) if args.events else []
    model = None if args.events else open_model(cfg, args)
    rec = read_recording(args.file, fmt=args.fmt, emg=args.emg, acc=args.acc)
    source = f"{args.events}"
    if model is not None:
        from ..offline import run_recording

        detected = run_recording(rec, model, device=args.file.stem).events
        events = [Annotation(e.type, e.onset_s, e.offset_s, e.subtype) for e in detected]
        source = "the detected events"
    inside = [e for e in events if 0 <= e.onset_s <= rec.duration_s]
    if len(inside) < len(events):
        log.warning(
            "%d event(s) lie outside the recording (0..%.1f s) and were left out; are %s the events of %s?",
            len(events) - len(inside),
            rec.duration_s,
            source,
            args.file,
        )
    kept = () if args.replace else rec.annotations
    write_edf(replace(rec, annotations=(*kept, *inside)), args.out)
    log.info("%s: %d event(s) + %d annotation(s) of the recording -> %s", args.file, len(inside), len(kept), args.out)
    return 0
