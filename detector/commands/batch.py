"""``cramp-detector batch``: detect events in every recording of a folder, in parallel on Dask.

    cramp-detector batch cohort/ --out results/                       # local processes
    cramp-detector batch /shared/cohort --out results/ --scheduler tcp://10.0.0.5:8786

Writes ``results/events/<file>.events.csv`` per recording and ``results/summary.csv`` (one row per
night), and prints the summary. A file that cannot be processed is listed with its error and the others
go on; the exit code is 1 if any file failed. See :mod:`detector.batch`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from crampwatch.cli import input_folder, output_folder, positive_int
from crampwatch.errors import ConfigError

NAME = "batch"
HELP = "detect events in every recording under a folder, in parallel on Dask, with a cohort summary table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import MODEL_FIELDS, DetectorSettings

    parser.add_argument(
        "folder", type=input_folder, help="folder searched recursively for recordings (.edf .bdf .csv .xdf ...)"
    )
    parser.add_argument(
        "--out", type=output_folder, required=True, help="results folder (events/ and summary.csv; created if missing)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=_scheduler,
        help="an existing Dask scheduler (tcp://host:8786); its workers need this package and the files",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="worker processes of the local cluster (default: one per core)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings_mod.add_arguments(parser, DetectorSettings, fields=MODEL_FIELDS)


def _scheduler(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not rest:
        raise argparse.ArgumentTypeError(f"{text!r} is not a scheduler address; give one like tcp://10.0.0.5:8786")
    return text


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..batch import find_recordings, format_table, run_cohort
    from ..config import load_settings, open_model

    if args.scheduler and args.workers:
        raise ConfigError("--workers sizes the local cluster; with --scheduler the cluster has its own workers")
    cfg = load_settings(args)
    open_model(cfg, args)  # a bad model fails here once, not in every task
    files = find_recordings(args.folder)
    if not files:
        raise ConfigError(f"no recordings under {args.folder} (looked for .edf .bdf .csv .xdf .txt ...)")

    def progress(finished: Iterable[Any], total: int) -> Iterable[Any]:
        bar: Iterable[Any] = tqdm(finished, total=total, unit="night", desc="cohort", disable=args.no_progress)
        return bar

    logging.getLogger("distributed").setLevel(logging.WARNING)  # Dask's start/stop chatter at INFO
    started = time.perf_counter()
    cohort = run_cohort(
        files,
        args.folder,
        cfg.model.resolve(),
        args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=progress,
    )
    print(format_table(cohort.results))
    print(
        f"{len(cohort.results)} recording(s), {len(cohort.failed)} failed, in {time.perf_counter() - started:.1f} s "
        f"-> {args.out / 'summary.csv'}",
        file=sys.stderr,
    )
    for r in cohort.failed:
        print(f"FAILED {r.file}: {r.error}", file=sys.stderr)
    return 1 if cohort.failed else 0
