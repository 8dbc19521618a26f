"""``cramp-detector evaluate``: score a detector's events against the truth (``shared/reference/events.md``).

cramp-detector evaluate night.edf --truth night.csv     one recording, truth from a CSV
cramp-detector evaluate night.edf                       truth: night.truth.csv, night.csv, else EDF+ annotations
cramp-detector evaluate nights/ --json scores.json      every recording in a folder
cramp-detector evaluate nights/ --events detected/      score event CSVs instead of running a detector
cramp-detector evaluate --simulated 16 --detector rms   held-out simulated nights, scoring a peer detector
cramp-detector evaluate real/ --no-events               recordings without cramps or spasms: false alarms
cramp-detector evaluate --scenarios                     the independent scenario suite (docs/scenarios.md)

A recording that cannot be read or analysed is listed (FAILED name: error) and the others are scored; the
exit code is then 1, as with `cramp-detector batch`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crampwatch.cli import input_path, non_negative_float, output_file, positive_float, positive_int

NAME = "evaluate"
HELP = "score detected cramps and spasms against the truth: precision, recall, F1, false alarms/h, onset error"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import MODEL_FIELDS, DetectorSettings
    from ..evaluate import DETECTORS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (__doc__ or "").split("\n\n", 1)[1]
    parser.add_argument(
        "paths", nargs="*", type=input_path, metavar="PATH", help="recording files and/or folders of them"
    )
    parser.add_argument(
        "--truth",
        type=input_path,
        metavar="FILE_OR_DIR",
        help="truth CSV (type,onset_s,offset_s[,subtype]) of the one recording, or a folder of <stem>.truth.csv / "
        "<stem>.csv (default: next to each recording, else the recording's EDF+ annotations)",
    )
    parser.add_argument(
        "--events",
        type=input_path,
        metavar="FILE_OR_DIR",
        help="score these event CSVs (as `detect --out` writes) instead of running a detector: a file for one "
        "recording, or a folder of <stem>.events.csv / <stem>.csv",
    )
    parser.add_argument(
        "--no-events",
        action="store_true",
        help="the recordings hold no cramp or spasm (e.g. voluntary movement): every detection is a false alarm",
    )
    parser.add_argument(
        "--simulated",
        type=positive_int,
        metavar="N",
        help="score N held-out simulated nights (HELDOUT_RANGES, seeds disjoint from training) instead of files",
    )
    parser.add_argument(
        "--scenarios",
        nargs="*",
        metavar="NAME",
        help="run the independent scenario suite (other code than the training simulator, real background; "
        "docs/scenarios.md) and print pass/fail per scenario; names pick some (default: all); seed from --seed",
    )
    parser.add_argument(
        "--night-s", type=positive_float, default=1800.0, help="simulated night length (default 1800 s)"
    )
    parser.add_argument("--density", type=non_negative_float, default=3.0, help="simulated event density (default 3)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="simulated nights' seed block (default 1, as `train`), or the scenarios' seed (default 0)",
    )
    parser.add_argument(
        "--detector",
        choices=DETECTORS,
        default="model",
        help="what finds the events: the model, or a peer (rms, neurokit; see docs/peers.md). Default: model",
    )
    parser.add_argument("--format", dest="fmt", help="recording format name (default: from each file's suffix)")
    parser.add_argument(
        "--json", type=output_file, metavar="FILE", help="write per-recording and pooled scores as JSON"
    )
    parser.add_argument(
        "--errors",
        action="store_true",
        help="also list every missed and false cramp/spasm with what lay near it (e.g. a 'voluntary' look-alike)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings_mod.add_arguments(parser, DetectorSettings, fields=MODEL_FIELDS)


def run(args: argparse.Namespace) -> int:
    from crampwatch.errors import ConfigError

    from ..config import load_settings
    from ..evaluate import evaluate, evaluate_simulated, file_cases, make_detector

    model_path = load_settings(args).model  # --model > CRAMP_MODEL > --config > the shipped model
    if args.scenarios is not None:
        return _run_scenarios(args, model_path)
    if args.simulated is not None:
        given = [
            flag
            for flag, value in (
                ("PATH", args.paths),
                ("--truth", args.truth),
                ("--events", args.events),
                ("--no-events", args.no_events),
            )
            if value
        ]
        if given:
            raise ConfigError(f"--simulated scores simulated nights; it cannot be combined with {', '.join(given)}")
        detect, described = make_detector(args.detector, model_path)
        result = evaluate_simulated(
            detect,
            args.simulated,
            night_s=args.night_s,
            density=args.density,
            seed=1 if args.seed is None else args.seed,
            detector=described,
            progress=not args.no_progress,
        )
    else:
        if not args.paths:
            raise ConfigError("nothing to evaluate: name recording files or folders, or pass --simulated N")
        cases = file_cases(args.paths, truth=args.truth, events=args.events, no_events=args.no_events, fmt=args.fmt)
        if args.events is not None:
            detect, described = None, {"name": "events", "events": str(args.events)}
        else:
            detect, described = make_detector(args.detector, model_path)
        source = {"kind": "files", "paths": [str(p) for p in args.paths], "no_events": args.no_events}
        result = evaluate(cases, detect, detector=described, source=source, progress=not args.no_progress)
    print(result.table())
    if args.errors:
        print("\n" + result.errors_table())
    if args.json:
        try:
            args.json.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        except OSError as err:
            raise ConfigError(f"--json {args.json}: cannot write ({err.strerror})") from None
        print(f"scores -> {args.json}", file=sys.stderr)
    # As `batch` does: the readable recordings are scored, the others listed, and the exit code says so.
    for failed in result.failed:
        print(f"FAILED {failed.name}: {failed.error}", file=sys.stderr)
    return 1 if result.failed else 0


def _run_scenarios(args: argparse.Namespace, model_path: Path) -> int:
    """The scenario suite through the model; exit code 1 when a scenario fails, so CI can gate on it."""
    from crampwatch.errors import ConfigError
    from crampwatch.scenarios import SCENARIOS, RealDataMissingError

    from ..model import load_model
    from ..scenario_check import format_table, run_scenarios

    others = [flag for flag, value in (("PATH", args.paths), ("--simulated", args.simulated)) if value]
    if others:
        raise ConfigError(f"--scenarios runs its own recordings; it cannot be combined with {', '.join(others)}")
    if args.detector != "model":
        raise ConfigError("--scenarios scores the model only; drop --detector")
    known = [s.name for s in SCENARIOS]
    unknown = [name for name in args.scenarios if name not in known]
    if unknown:
        raise ConfigError(f"--scenarios: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    model = load_model(model_path)
    try:
        results = run_scenarios(model, seed=0 if args.seed is None else args.seed, names=args.scenarios or None)
    except RealDataMissingError as err:
        raise ConfigError(f"--scenarios needs the real background recordings: {err}") from None
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1
