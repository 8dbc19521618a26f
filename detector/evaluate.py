"""Score a detector's events against the truth, per recording and pooled (``cramp-detector evaluate``).

Scoring follows ``shared/reference/events.md`` through :mod:`detector.scoring`: a prediction matches a true
event of the same type at IoU >= 0.2, one to one, greedily by IoU; per type (cramp, spasm, and plm when
both the truth and the predictions contain it) precision, recall, F1, false alarms per hour and the
median onset error; and for the matched spasms the subtype accuracy and confusion table
(:class:`~detector.scoring.SubtypeScore`). Pooled scores sum the counts and hours of every recording. A
recording that cannot be read or analysed is listed in :attr:`Evaluation.failed` with its error, and the
others go on (as in ``cramp-detector batch``); a recording without truth stops the evaluation, since every
later one would likely lack it too.

What is scored (a :class:`Case` per recording):

- recording files, with the truth from ``--truth FILE``, else a CSV next to the recording
  (``<stem>.truth.csv``, or ``<stem>.csv`` unless the recording is itself a CSV), else the recording's own
  annotations (EDF+); ``no_events=True`` scores recordings known to hold no cramp or spasm against an
  empty truth (every prediction is a false alarm);
- held-out simulated nights (:func:`simulated_cases`): the nights ``cramp-detector train`` scores its
  model on, from ``HELDOUT_RANGES`` with seeds disjoint from training (the recipe is
  :func:`detector.train.data.heldout_recording`, and the card's held-out section is
  :func:`evaluate_simulated`);
- predictions come from a detector (:data:`DETECTORS`: the model or a peer from :mod:`detector.peers`)
  or from event CSV files (``type,onset_s,offset_s,...`` as ``detect`` writes them).

    cases = file_cases([Path("nights/")])
    result = evaluate(cases, make_detector("rms"))
    print(result.table())
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from crampwatch.errors import ConfigError, CrampWatchError
from crampwatch.recording import Recording, read_annotations

from .batch import FILE_ERRORS, file_error
from .scoring import (
    Interval,
    ScoringError,
    SubtypeScore,
    TypeScore,
    combine,
    errors,
    format_table,
    score,
    split_by_accelerometer,
)

__all__ = [
    "BASE_TYPES",
    "DETECTORS",
    "Case",
    "DetectFn",
    "Evaluation",
    "EvaluationError",
    "FailedCase",
    "MissingEventsError",
    "MissingTruthError",
    "RecordingScore",
    "case_truth",
    "evaluate",
    "evaluate_many",
    "evaluate_simulated",
    "file_cases",
    "make_detector",
    "model_detector",
    "simulated_cases",
    "simulated_source",
]

log = logging.getLogger(__name__)

#: Names accepted by ``--detector``.
DETECTORS = ("model", "rms", "neurokit")
#: The event types CrampWatch reports and scores: always scored; ``plm`` is added when both the truth and
#: the predictions contain one.
BASE_TYPES = ("cramp", "spasm")
OPTIONAL_TYPES = ("plm",)

DetectFn = Callable[[Recording], Sequence[Interval]]


class EvaluationError(CrampWatchError):
    """Something ``evaluate`` needs for a recording is missing. ``path`` names the recording."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class MissingTruthError(EvaluationError):
    """A recording has no truth: no truth CSV next to it and no annotations in it."""


class MissingEventsError(EvaluationError):
    """``--events`` was given but holds no event file for a recording."""


# --------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One recording to score: how to load it, where its truth is, and (optionally) its predictions.

    ``truth`` is a CSV path, ``"annotations"`` (the recording's own), ``"simulator"`` (the same, for a
    simulated night) or ``"none"`` (known to hold no scored event). ``events`` is an event CSV to score
    instead of running a detector.
    """

    name: str
    load: Callable[[], Recording]
    truth: Path | str = "annotations"
    events: Path | None = None


def _suffixes() -> set[str]:
    from crampwatch.formats import available_formats

    return {s.lower() for sufs in available_formats().values() for s in sufs}


def _is_event_csv(path: Path) -> bool:
    """A CSV of events or truth (``type,onset_s,...`` header) rather than a recording."""
    name = path.name.lower()
    if name.endswith((".truth.csv", ".events.csv")):
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline().strip().lower().replace(" ", "")
    except OSError:
        return False
    return head.startswith("type,onset_s")


def _recordings_in(folder: Path) -> list[Path]:
    suffixes = _suffixes()
    files = sorted(f for f in folder.iterdir() if f.is_file() and any(f.name.lower().endswith(s) for s in suffixes))
    stems = {f.stem for f in files if f.suffix.lower() != ".csv"}
    return [f for f in files if f.suffix.lower() != ".csv" or (f.stem not in stems and not _is_event_csv(f))]


def _stem(path: Path) -> str:
    """``night`` for ``night.edf``; compound suffixes (``night.csv.gz``) lose only the last one."""
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def _sibling_csv(recording: Path, folder: Path, kinds: Sequence[str]) -> Path | None:
    """``<stem>.<kind>.csv`` for each kind in order, then ``<stem>.csv`` (unless that is the recording)."""
    stem = _stem(recording)
    names = [f"{stem}.{kind}.csv" for kind in kinds] + [f"{stem}.csv"]
    for name in names:
        candidate = folder / name
        if candidate.is_file() and candidate.resolve() != recording.resolve():
            return candidate
    return None


def _loader(path: Path, fmt: str | None) -> Callable[[], Recording]:
    def load() -> Recording:
        from crampwatch.formats import read_recording

        return read_recording(path, fmt=fmt)

    return load


def file_cases(
    paths: Sequence[Path],
    *,
    truth: Path | None = None,
    events: Path | None = None,
    no_events: bool = False,
    fmt: str | None = None,
) -> list[Case]:
    """Cases for recording files and folders of recordings (sorted by name within a folder).

    ``truth``: a truth CSV (one recording) or a folder holding ``<stem>.truth.csv`` / ``<stem>.csv``
    (default: next to each recording; else the recording's annotations). ``events``: an event CSV (one
    recording) or a folder holding ``<stem>.events.csv`` / ``<stem>.csv``. ``no_events``: the recordings
    hold no cramp or spasm, so the truth is empty.
    """
    recordings: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = _recordings_in(p)
            if not found:
                raise ConfigError(f"{p}: no recordings in this folder (readable suffixes: {sorted(_suffixes())})")
            recordings += found
        elif p.exists():
            recordings.append(p)
        else:
            raise ConfigError(f"{p}: no such file or folder")
    if not recordings:
        raise ConfigError("nothing to evaluate: name recording files or folders, or pass --simulated N")
    if no_events and truth is not None:
        raise ConfigError("--no-events and --truth contradict each other; pass one of them")
    for option, given in (("--truth", truth), ("--events", events)):
        if given is not None and given.is_file() and len(recordings) > 1:
            raise ConfigError(f"{option} {given} is one file but there are {len(recordings)} recordings; pass a folder")
        if given is not None and not given.exists():
            raise ConfigError(f"{option} {given}: no such file or folder")
    cases = []
    for rec_path in recordings:
        case_truth: Path | str
        if no_events:
            case_truth = "none"
        elif truth is not None and truth.is_file():
            case_truth = truth
        else:
            found_truth = _sibling_csv(rec_path, truth or rec_path.parent, ("truth",))
            case_truth = found_truth if found_truth is not None else "annotations"
        case_events = None
        if events is not None:
            case_events = events if events.is_file() else _sibling_csv(rec_path, events, ("events",))
            if (
                isinstance(case_truth, Path)
                and case_events is not None
                and case_events.resolve() == case_truth.resolve()
            ):
                case_events = None  # <stem>.csv is already the truth: never score the truth against itself
            if case_events is None:
                raise MissingEventsError(
                    str(rec_path),
                    f"no events file for it in {events} (looked for {_stem(rec_path)}.events.csv and "
                    f"{_stem(rec_path)}.csv); write one with `cramp-detector detect {rec_path} --out "
                    f"{events / (_stem(rec_path) + '.events.csv')}`",
                )
        cases.append(Case(str(rec_path), _loader(rec_path, fmt), case_truth, case_events))
    return cases


def simulated_cases(nights: int, *, night_s: float = 1800.0, density: float = 3.0, seed: int = 1) -> list[Case]:
    """The held-out simulated nights ``cramp-detector train`` scores its model on (same seeds)."""
    if nights < 1:
        raise ConfigError(f"--simulated must be at least 1, got {nights}")
    if not night_s >= 60:
        raise ConfigError(f"--night-s must be at least 60 seconds, got {night_s:g}")

    from .train.data import heldout_recording, heldout_seed  # training's recipe: the same nights, defined once

    def loader(night_seed: int) -> Callable[[], Recording]:
        return lambda: heldout_recording(night_seed, night_s, density)

    seeds = [heldout_seed(i, seed) for i in range(nights)]
    return [Case(f"simulated seed={s}", loader(s), "simulator") for s in seeds]


# --------------------------------------------------------------------------------------------- detectors


def model_detector(model: Any) -> DetectFn:
    """The shipped pipeline (:func:`detector.offline.detect_recording`) with ``model``."""
    from .offline import detect_recording

    def detect(rec: Recording) -> Sequence[Interval]:
        return detect_recording(rec, model)

    return detect


def make_detector(name: str, model_path: Path | None = None) -> tuple[DetectFn, dict[str, Any]]:
    """The detector called ``name`` (:data:`DETECTORS`) and a description of it for the report."""
    if name == "model":
        from .model import DEFAULT_MODEL, load_model

        model = load_model(model_path)
        return model_detector(model), {
            "name": "model",
            "model": str(model_path or DEFAULT_MODEL),
            "sha256": model.card.get("sha256"),
        }
    from . import peers

    if name == "neurokit":
        peers.neurokit.require()
        settings: Any = peers.neurokit.NeurokitSettings()
    elif name == "rms":
        settings = peers.rms.RmsSettings()
    else:
        raise ConfigError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return peers.get_peer(name), {"name": name, "settings": asdict(settings)}


# --------------------------------------------------------------------------------------------- results


def _finite(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by None (JSON has no NaN), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class RecordingScore:
    """Scores of one recording; ``detect_s``/``cpu_s``: the detector's wall/CPU time (None for ``--events``)."""

    name: str
    hours: float
    emg_rate_hz: float
    accelerometer: bool
    truth: str
    detect_s: float | None
    cpu_s: float | None
    scores: dict[str, TypeScore]
    errors: tuple[ScoringError, ...] = ()
    subtypes: SubtypeScore = field(default_factory=SubtypeScore)

    @property
    def x_real_time(self) -> float | None:
        return self.hours * 3600 / self.detect_s if self.detect_s else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hours": round(self.hours, 4),
            "emg_rate_hz": self.emg_rate_hz,
            "accelerometer": self.accelerometer,
            "truth": self.truth,
            "detect_s": None if self.detect_s is None else round(self.detect_s, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
            "x_real_time": None if self.x_real_time is None else round(self.x_real_time, 1),
            "scores": {k: v.as_dict() for k, v in self.scores.items()},
            "subtypes": self.subtypes.as_dict(),
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class FailedCase:
    """A recording that could not be read or analysed, and why (``Type: message``, as ``batch`` lists it)."""

    name: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "error": self.error}


@dataclass(frozen=True)
class Evaluation:
    """Per-recording and pooled scores of one detector (or one set of event files).

    ``failed``: the recordings that could not be read or analysed; they are in no score.
    """

    detector: dict[str, Any]
    source: dict[str, Any]
    recordings: tuple[RecordingScore, ...]
    types: tuple[str, ...] = BASE_TYPES
    failed: tuple[FailedCase, ...] = ()
    pooled: dict[str, TypeScore] = field(init=False)
    subtypes: SubtypeScore = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pooled", combine([r.scores for r in self.recordings]))
        object.__setattr__(self, "subtypes", SubtypeScore.pooled([r.subtypes for r in self.recordings]))

    @property
    def hours(self) -> float:
        return sum(r.hours for r in self.recordings)

    @property
    def by_accelerometer(self) -> dict[str, dict[str, TypeScore]]:
        """Pooled scores of the recordings with and without an accelerometer, when there are both.

        The two are scored by different classifiers and are not equally hard, so a pooled score alone
        hides which one a change helped.
        """
        split = split_by_accelerometer([r.scores for r in self.recordings], [r.accelerometer for r in self.recordings])
        return split if len(split) == 2 else {}

    @property
    def detect_s(self) -> float | None:
        times = [r.detect_s for r in self.recordings]
        return None if any(t is None for t in times) else sum(t for t in times if t is not None)

    @property
    def cpu_s(self) -> float | None:
        times = [r.cpu_s for r in self.recordings]
        return None if any(t is None for t in times) else sum(t for t in times if t is not None)

    @property
    def x_real_time(self) -> float | None:
        """Recorded hours over the detector's wall time (depends on what else the machine is doing)."""
        total = self.detect_s
        return self.hours * 3600 / total if total else None

    @property
    def x_real_time_cpu(self) -> float | None:
        """Recorded hours over the detector's CPU time (steadier than wall time on a busy machine)."""
        total = self.cpu_s
        return self.hours * 3600 / total if total else None

    def table(self) -> str:
        """Per-recording counts (true/predicted/matched per type), then the pooled score table."""
        width = max([len("recording"), *(len(Path(r.name).name) for r in self.recordings)])
        head = f"{'recording':<{width}}  {'hours':>6}  " + "".join(f"{t + ' t/p/m':>15}" for t in self.types)
        head += f"  {'x real time':>11}  truth"
        rows = [head]
        for r in self.recordings:
            counts = "".join(f"{f'{s.true}/{s.predicted}/{s.matched}':>15}" for s in r.scores.values())
            speed = f"{r.x_real_time:>11.0f}" if r.x_real_time is not None else f"{'-':>11}"
            rows.append(f"{Path(r.name).name:<{width}}  {r.hours:>6.3f}  {counts}  {speed}  {Path(r.truth).name}")
        speed = f", {self.x_real_time:.0f} x real time" if self.x_real_time is not None else ""
        failed = f", {len(self.failed)} failed (not scored)" if self.failed else ""
        summary = (
            f"{self.detector['name']}: {len(self.recordings)} recording(s){failed}, {self.hours:.2f} h{speed}\n"
            + format_table(self.pooled)
        )
        summary += "\n\n" + self.subtypes.table()
        for label, scores in self.by_accelerometer.items():
            n = sum(r.accelerometer == (label == "with accelerometer") for r in self.recordings)
            summary += f"\n\n{label}: {n} recording(s)\n" + format_table(scores)
            summary += "\n" + self._subtypes_where(label == "with accelerometer").summary()
        return "\n".join(rows) + "\n\n" + summary

    def _subtypes_where(self, accelerometer: bool) -> SubtypeScore:
        return SubtypeScore.pooled([r.subtypes for r in self.recordings if r.accelerometer == accelerometer])

    def errors_table(self) -> str:
        """Every miss and false prediction of every recording, with what lay near it."""
        rows = [f"{'recording':<24} {'error':<7} {'type':<7} {'onset s':>9} {'offset s':>9}  near"]
        for r in self.recordings:
            for e in r.errors:
                near = ", ".join(e.near) or "-"
                rows.append(
                    f"{Path(r.name).name:<24} {e.kind:<7} {e.type:<7} {e.onset_s:>9.1f} {e.offset_s:>9.1f}  {near}"
                )
        if len(rows) == 1:
            return "no missed or false events"
        return "\n".join(rows)

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (NaN becomes null)."""
        out: dict[str, Any] = _finite(
            {
                "detector": self.detector,
                "source": self.source,
                "types": list(self.types),
                "pooled": {
                    "recordings": len(self.recordings),
                    "hours": round(self.hours, 4),
                    "detect_s": None if self.detect_s is None else round(self.detect_s, 3),
                    "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
                    "x_real_time": None if self.x_real_time is None else round(self.x_real_time, 1),
                    "x_real_time_cpu": None if self.x_real_time_cpu is None else round(self.x_real_time_cpu, 1),
                    "scores": {k: v.as_dict() for k, v in self.pooled.items()},
                    "subtypes": self.subtypes.as_dict(),
                    "by_accelerometer": {
                        label: {k: v.as_dict() for k, v in scores.items()}
                        for label, scores in self.by_accelerometer.items()
                    },
                },
                "recordings": [r.as_dict() for r in self.recordings],
                "failed": [f.as_dict() for f in self.failed],
                "table": self.table(),
            }
        )
        return out


# --------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class _Raw:
    case: Case
    truth_label: str
    hours: float
    emg_rate_hz: float
    accelerometer: bool
    truth: tuple[Interval, ...]
    predicted: tuple[Interval, ...]
    detect_s: float | None
    cpu_s: float | None


def case_truth(case: Case, rec: Recording) -> tuple[tuple[Interval, ...], str]:
    """The true events of ``case`` (its recording already loaded as ``rec``) and where they came from."""
    if case.truth == "none":
        return (), "none (--no-events)"
    if isinstance(case.truth, Path):
        return tuple(read_annotations(case.truth)), str(case.truth)
    if case.truth == "simulator":
        return tuple(rec.annotations), "simulator"
    if not rec.annotations:
        where = Path(case.name)
        raise MissingTruthError(
            case.name,
            f"no truth for this recording: it has no annotations and there is no {_stem(where)}.truth.csv or "
            f"{_stem(where)}.csv next to it. Provide the true events as a CSV with columns "
            "type,onset_s,offset_s[,subtype] (next to it, or with --truth FILE), or as EDF+ annotations; "
            "if it holds no cramp or spasm at all, pass --no-events",
        )
    return tuple(rec.annotations), "annotations"


def _run_case(case: Case, rec: Recording, truth: tuple[Interval, ...], label: str, detect: DetectFn | None) -> _Raw:
    if case.events is not None:
        predicted: tuple[Interval, ...] = tuple(read_annotations(case.events))
        elapsed = cpu = None
    else:
        if detect is None:
            raise ConfigError("no detector and no event files: pass a detector or --events")
        started, started_cpu = time.perf_counter(), time.process_time()
        predicted = tuple(detect(rec))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return _Raw(
        case, label, rec.duration_s / 3600, rec.emg.rate_hz, rec.acc is not None, truth, predicted, elapsed, cpu
    )


def _types(raws: Iterable[_Raw]) -> tuple[str, ...]:
    raws = list(raws)
    extra = tuple(
        t
        for t in OPTIONAL_TYPES
        if any(x.type == t for r in raws for x in r.truth) and any(x.type == t for r in raws for x in r.predicted)
    )
    return BASE_TYPES + extra


def _scored(
    raws: Sequence[_Raw],
    detector: dict[str, Any],
    source: dict[str, Any],
    types: Sequence[str] | None,
    failed: Sequence[FailedCase],
) -> Evaluation:
    types = _types(raws) if types is None else tuple(types)
    recordings = tuple(
        RecordingScore(
            r.case.name,
            r.hours,
            r.emg_rate_hz,
            r.accelerometer,
            r.truth_label,
            r.detect_s,
            r.cpu_s,
            score(r.truth, r.predicted, r.hours, types),
            tuple(errors(r.truth, r.predicted, BASE_TYPES)),
            SubtypeScore.of(r.truth, r.predicted),
        )
        for r in raws
    )
    return Evaluation(detector, source, recordings, types, tuple(failed))


def evaluate_many(
    cases: Sequence[Case],
    detectors: Mapping[str, tuple[DetectFn | None, dict[str, Any]]],
    *,
    source: dict[str, Any] | None = None,
    types: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Evaluation]:
    """Score several detectors (name -> (function, description)) on the same cases.

    Each recording is loaded (or simulated) once and handed to every detector in turn, so all of them
    see exactly the same samples. A ``None`` function means "read the case's event file". ``types``:
    the event types to score (default: cramp and spasm, and plm when both truth and predictions hold
    one). A recording that cannot be read or analysed (a :data:`~detector.batch.FILE_ERRORS` error in
    loading, its truth or events file, or a detector) goes to every result's ``failed`` and out of
    every score, so the detectors are still compared on the same recordings.
    """
    if not cases:
        raise ConfigError("nothing to evaluate")
    raws: dict[str, list[_Raw]] = {name: [] for name in detectors}
    failed: list[FailedCase] = []
    bar: Iterator[Case] = tqdm(cases, desc="evaluate", unit="recording", disable=not progress)
    for case in bar:
        try:
            rec = case.load()
            truth, label = case_truth(case, rec)
            row = {name: _run_case(case, rec, truth, label, detect) for name, (detect, _) in detectors.items()}
        except (EvaluationError, ConfigError):
            raise  # missing truth or a wrong setup: every later recording would fail the same way
        except FILE_ERRORS as err:
            log.error("%s: %s", case.name, file_error(err))
            failed.append(FailedCase(case.name, file_error(err)))
            continue
        for name, raw in row.items():
            raws[name].append(raw)
    return {
        name: _scored(raws[name], described, source or {}, types, failed) for name, (_, described) in detectors.items()
    }


def evaluate(
    cases: Sequence[Case],
    detect: DetectFn | None,
    *,
    detector: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    types: Sequence[str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Run ``detect`` on every case (or read its event file) and score it against its truth."""
    described = detector or {"name": "events"}
    return evaluate_many(cases, {"": (detect, described)}, source=source, types=types, progress=progress)[""]


def simulated_source(nights: int, *, night_s: float = 1800.0, density: float = 3.0, seed: int = 1) -> dict[str, Any]:
    """How :func:`simulated_cases` made its nights, for the report."""
    from .train.data import heldout_seed

    return {
        "kind": "simulated",
        "ranges": "HELDOUT_RANGES",
        "nights": nights,
        "night_s": night_s,
        "density": density,
        "seeds": [heldout_seed(0, seed), heldout_seed(nights - 1, seed)],
    }


def evaluate_simulated(
    detect: DetectFn,
    nights: int,
    *,
    night_s: float = 1800.0,
    density: float = 3.0,
    seed: int = 1,
    detector: dict[str, Any] | None = None,
    types: Sequence[str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Score ``detect`` on ``nights`` held-out simulated nights (``train``'s card section ``heldout``)."""
    cases = simulated_cases(nights, night_s=night_s, density=density, seed=seed)
    source = simulated_source(nights, night_s=night_s, density=density, seed=seed)
    return evaluate(cases, detect, detector=detector, source=source, types=types, progress=progress)
