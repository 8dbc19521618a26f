"""Cohort processing: many recordings through offline detection in parallel on Dask, one summary table.

Why Dask: a cohort is hundreds of nights and each is independent, so the work spreads over processes on
one machine (``dask.distributed.LocalCluster``, the default) or, unchanged, over an existing Dask cluster
(``--scheduler tcp://host:8786``). Each file is one task: :func:`process_file` reads it, runs
:func:`~detector.offline.detect_recording` (the code the live service runs) and returns its events and
night summary to the client, which writes every output file. So workers need the input files (a shared
path) and this package installed, but not the output folder.

A failure of one file (unreadable, corrupt, no EMG ...) becomes that file's ``error`` and the cohort goes
on; the worker catches it because an exception crossing process boundaries may not unpickle.

Per night (see :data:`SUMMARY_FIELDS`): hours of recording, cramps, total cramp minutes, spasms, PLM
index and data coverage (the share of seconds for which the detector had valid EMG). The PLM index is
the pipeline's ``plm`` events (periodic leg movements by the AASM rules, :mod:`detector.plm`) per hour
of recording.
"""

from __future__ import annotations

import csv
import functools
import importlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from crampwatch.errors import CrampWatchError
from crampwatch.formats import available_formats

from .events import CSV_FIELDS, Event

log = logging.getLogger(__name__)

SUMMARY_FIELDS: Final = (
    "file",
    "hours",
    "cramps",
    "cramp_minutes",
    "spasms",
    "plm_index",
    "coverage_pct",
    "emg_hz",
    "acc",
    "error",
)


#: What a bad input file raises while it is read or analysed: such a file is listed with its error and the
#: others go on (here and in ``cramp-detector evaluate``). Anything else is a bug and stops the run.
FILE_ERRORS: Final = (CrampWatchError, OSError, ValueError)


def file_error(err: BaseException) -> str:
    """How a failed file's error is listed: ``RecordingError: night.edf: ...``."""
    return f"{type(err).__name__}: {err}"


@dataclass(frozen=True, slots=True)
class NightResult:
    """What one file produced: its events and summary, or the error that stopped it."""

    file: str
    events: tuple[Event, ...] = ()
    hours: float = 0.0
    coverage: float = 0.0
    emg_hz: float = 0.0
    acc: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def summary_row(self) -> dict[str, str]:
        if not self.ok:
            return {name: "" for name in SUMMARY_FIELDS} | {"file": self.file, "error": self.error}
        cramps = [e for e in self.events if e.type == "cramp"]
        return {
            "file": self.file,
            "hours": f"{self.hours:.3f}",
            "cramps": str(len(cramps)),
            "cramp_minutes": f"{sum(e.duration_s for e in cramps) / 60:.1f}",
            "spasms": str(sum(e.type == "spasm" for e in self.events)),
            "plm_index": f"{sum(e.type == 'plm' for e in self.events) / self.hours:.1f}" if self.hours else "",
            "coverage_pct": f"{100 * self.coverage:.1f}",
            "emg_hz": f"{self.emg_hz:g}",
            "acc": "yes" if self.acc else "no",
            "error": "",
        }


@dataclass
class CohortResult:
    results: list[NightResult] = field(default_factory=list)

    @property
    def failed(self) -> list[NightResult]:
        return [r for r in self.results if not r.ok]


def find_recordings(folder: Path) -> list[Path]:
    """Files under ``folder`` (recursively) whose suffix a registered format claims, sorted."""
    suffixes = tuple(s for claimed in available_formats().values() for s in claimed)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))


@functools.lru_cache(maxsize=4)
def _model(path: str) -> Any:
    from .model import load_model

    return load_model(path)


def process_file(path: str, model_path: str, name: str) -> NightResult:
    """One night: read, detect, summarise. Runs on a Dask worker; never raises for a bad file."""
    from crampwatch.formats import open_recording

    from .offline import run_recording

    try:
        model = _model(model_path)
        # EDF/BDF are streamed from the file, so a worker's memory does not grow with the night.
        with open_recording(path) as rec:
            out = run_recording(rec, model, patient="cohort", device=name)
    except FILE_ERRORS as err:
        return NightResult(name, error=file_error(err))
    seconds = len(out.summaries)
    valid = sum(s.data_received for s in out.summaries)
    return NightResult(
        name,
        tuple(out.events),
        hours=rec.duration_s / 3600,
        coverage=valid / seconds if seconds else 0.0,
        emg_hz=rec.emg.rate_hz,
        acc=rec.acc is not None,
    )


def run_cohort(
    files: Sequence[Path],
    root: Path,
    model_path: Path,
    out: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> CohortResult:
    """Process ``files`` on Dask and write ``out/events/<name>.events.csv`` and ``out/summary.csv``.

    ``name`` is the path relative to ``root`` with ``/`` replaced by ``__``, so equal file names in
    different folders do not collide. ``progress(iterable, total)`` wraps the stream of finished tasks.
    """
    # dask.distributed is only partly typed; it is used through these three names.
    distributed: Any = importlib.import_module("dask.distributed")

    out.mkdir(parents=True, exist_ok=True)
    (out / "events").mkdir(exist_ok=True)
    names = {str(p): _name(p, root) for p in files}
    cohort = CohortResult()
    cluster = None
    if scheduler is None:
        # ":0": the scheduler's HTTP server takes a free port; the default 8787 may be taken by another
        # cluster on the machine, which Dask only reports with a warning.
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
        )
    client = distributed.Client(cluster if cluster is not None else scheduler)
    try:
        futures = [
            client.submit(process_file, str(p), str(model_path), names[str(p)], pure=False, key=f"night-{i}")
            for i, p in enumerate(files)
        ]
        finished = distributed.as_completed(futures)
        for future in progress(finished, len(futures)) if progress else finished:
            result: NightResult = future.result()
            if result.ok:
                _write_events(out / "events" / f"{result.file}.events.csv", result.events)
            else:
                log.error("%s: %s", result.file, result.error)
            cohort.results.append(result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    cohort.results.sort(key=lambda r: r.file)
    write_summary(out / "summary.csv", cohort.results)
    return cohort


def _name(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    return "__".join(rel.parts)


def _write_events(path: Path, events: Iterable[Event]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        writer.writerows(e.csv_row() for e in events)


def write_summary(path: Path, results: Iterable[NightResult]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(r.summary_row() for r in results)


def format_table(results: Sequence[NightResult]) -> str:
    """The summary as aligned text for the terminal (errors shortened to one line)."""
    rows = [dict(r.summary_row()) for r in results]
    for row in rows:
        row["error"] = row["error"].splitlines()[0][:80] if row["error"] else ""
    columns = [c for c in SUMMARY_FIELDS if c != "error" or any(row["error"] for row in rows)]
    widths = {c: max([len(c), *(len(row[c]) for row in rows)]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in columns) for row in rows]
    return "\n".join(line.rstrip() for line in lines)
