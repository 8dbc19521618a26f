"""Every recording a model is trained, calibrated or scored on, and the labelled windows made from them.

The recipes live here once, with their seed blocks side by side so they stay disjoint:

- training nights: ``TRAIN_RANGES`` with the rare classes boosted (:data:`RATE_BOOST`), seeds
  ``seed x 100,000 + i``, a :data:`NO_ACC_FRACTION` of them without accelerometer;
- calibration nights: ``TRAIN_RANGES`` at natural event rates, seeds ``200,000 + seed x 1000 + i``;
- held-out nights: ``HELDOUT_RANGES``, seeds ``1,000,000 + seed x 1000 + i``, a
  :data:`HELDOUT_NO_ACC_FRACTION` of them without accelerometer. ``cramp-detector evaluate --simulated``
  scores the same nights (:func:`detector.evaluate.simulated_cases` uses :func:`heldout_recording`);
- real recordings: negatives (no cramp or spasm) and labeled recordings (truth found as ``evaluate``
  finds it).

Which nights lose their accelerometer depends only on the seed (:func:`drop_acc_by_seed`), so every run
drops the same ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from crampwatch.recording import Recording, Signal
from crampwatch.simulate import HELDOUT_RANGES, TRAIN_RANGES, Night, ParamRanges

from ..features import NAMES
from ..offline import run_recording
from ..scoring import Interval
from .config import TrainConfig

log = logging.getLogger(__name__)

#: Window classes. The model learns the look-alikes as classes of their own, which sharpens the
#: boundary of cramp and spasm; only cramp and spasm become events.
CLASSES = ("other", "cramp", "spasm", "plm", "movement")
_CLASS_OF = {
    "cramp": "cramp",
    "movement": "movement",
    "spasm": "spasm",
    "plm": "plm",
    # an isolated leg movement looks like one of a PLM series; only the series makes it periodic
    "leg_movement": "plm",
    "turn": "movement",
    "voluntary": "movement",
    "wake": "movement",
    "artifact": "movement",
}
_PRIORITY = {"cramp": 4, "spasm": 4, "plm": 3, "movement": 2, "other": 0}
#: Share of training and calibration nights without accelerometer, so the model also works without one.
NO_ACC_FRACTION = 0.15
#: Share of held-out nights (training's card and ``evaluate --simulated``) scored without accelerometer.
HELDOUT_NO_ACC_FRACTION = 0.25
#: Share of real negative recordings whose accelerometer is dropped.
NEGATIVE_NO_ACC_FRACTION = 0.5
#: Training nights over-represent the rare and the confusable, so each class has examples enough:
#: spasms (five subtypes), PLM series and the look-alikes a detector must not call a cramp or spasm.
#: (Boosting voluntary movements x6, turns x3 and artifacts x4 was tried; it scored no better on
#: natural-rate validation nights, so the look-alikes keep a moderate boost.)
#: Cramps x3 (a training night of 20 min then holds one to three), spasms x10 (five subtypes at every
#: amplitude, rise and posture change need examples: the previous x3 left 1 % of windows spasm).
RATE_BOOST = {
    "cramp_per_h": 3.0,
    "spasm_per_h": 10.0,
    "plm_series_per_h": 4.0,
    "artifact_per_h": 2.0,
    "voluntary_per_h": 2.0,
    "pop_per_h": 2.0,
    "fasciculation_per_h": 2.0,
}
CALIBRATION_SEED = 200_000
HELDOUT_SEED = 1_000_000
NEGATIVE_PAD_S = 60.0


# --------------------------------------------------------------------------------------------- seeds


def training_seeds(cfg: TrainConfig) -> list[int]:
    """Seeds of the training nights (the held-out and calibration seed blocks lie elsewhere)."""
    return [cfg.seed * 100_000 + i for i in range(cfg.nights)]


def calibration_seeds(cfg: TrainConfig) -> list[int]:
    """Seeds of the calibration nights: 200,000 + 1000 x seed + index."""
    return [CALIBRATION_SEED + cfg.seed * 1000 + i for i in range(cfg.calibration_nights)]


def heldout_seed(index: int, seed: int = 1) -> int:
    """Seed of held-out night ``index``: 1,000,000 + 1000 x seed + index (training uses seed x 100,000 + i)."""
    return HELDOUT_SEED + seed * 1000 + index


# --------------------------------------------------------------------------------------------- recordings


def drop_acc(rec: Recording) -> Recording:
    """``rec`` without its accelerometer."""
    return Recording(emg=rec.emg, acc=None, annotations=rec.annotations, source=rec.source, meta=rec.meta)


def drop_acc_by_seed(rec: Recording, seed: int, fraction: float) -> Recording:
    """``rec`` without its accelerometer for a ``fraction`` of seeds (the same seeds every run)."""
    return drop_acc(rec) if np.random.default_rng([seed, 7]).random() < fraction else rec


def training_night(seed: int, night_s: float, density: float, ranges: ParamRanges = TRAIN_RANGES) -> Night:
    """A domain-randomised night with the rare classes boosted (RATE_BOOST)."""
    params = ranges.sample(np.random.default_rng(seed))
    params = replace(params, **{k: getattr(params, k) * v for k, v in RATE_BOOST.items()})
    return Night(night_s, seed, params=params, event_density=density)


def calibration_night(seed: int, night_s: float, density: float) -> tuple[Night, Recording]:
    """A validation night as the real world draws it (TRAIN_RANGES, natural event rates), and its recording."""
    night = Night(night_s, seed, ranges=TRAIN_RANGES, event_density=density)
    return night, drop_acc_by_seed(night.recording(), seed, NO_ACC_FRACTION)


def heldout_recording(night_seed: int, night_s: float, density: float) -> Recording:
    """A held-out simulated night (HELDOUT_RANGES); a quarter of them (by seed) without accelerometer."""
    rec = Night(night_s, night_seed, ranges=HELDOUT_RANGES, event_density=density).recording()
    return drop_acc_by_seed(rec, night_seed, HELDOUT_NO_ACC_FRACTION)


def _padded_with_rest(rec: Recording, seed: int) -> Recording:
    """``rec`` with a minute of synthetic rest before and after, at the recording's own quiet level.

    Real negative recordings are short and start mid-activity; real nights are long and mostly rest.
    Training on both shapes teaches the model what voluntary activity looks like against a resting
    baseline as well as without one.
    """
    rng = np.random.default_rng(seed)
    emg = rec.emg
    n_pad = round(NEGATIVE_PAD_S * emg.rate_hz)
    quiet = float(np.percentile(np.abs(np.diff(emg.data, axis=0)), 10)) or 1.0
    pad = rng.normal(0.0, quiet, (n_pad, emg.data.shape[1]))
    data = np.vstack([pad, emg.data, rng.normal(0.0, quiet, (n_pad, emg.data.shape[1]))])
    padded_emg = Signal(emg.kind, emg.rate_hz, emg.channel_names, data)
    return Recording(emg=padded_emg, acc=None, source=rec.source)


def expand(paths: Sequence[str]) -> list[str]:
    """Files named directly, plus the readable files inside named folders (sorted)."""
    from crampwatch.formats import available_formats

    suffixes = {suf for sufs in available_formats().values() for suf in sufs}
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(str(f) for f in p.iterdir() if f.suffix.lower() in suffixes)
        else:
            out.append(str(p))
    return out


# --------------------------------------------------------------------------------------------- windows


def window_labels(ends_s: npt.NDArray[np.float64], annotations: Sequence[Interval]) -> npt.NDArray[np.str_]:
    """Class of each window, from the truth at the window's centre (0.5 s before its end)."""
    centre = ends_s - 0.5
    labels = np.full(centre.shape[0], "other", dtype=object)
    rank = np.zeros(centre.shape[0])
    for a in annotations:
        cls = _CLASS_OF.get(a.type)
        if cls is None:
            continue
        inside = (centre >= a.onset_s) & (centre < a.offset_s) & (rank < _PRIORITY[cls])
        labels[inside] = cls
        rank[inside] = _PRIORITY[cls]
    return labels.astype(str)


def night_windows(
    seed: int, night_s: float, density: float, ranges: ParamRanges = TRAIN_RANGES
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every window of one simulated training night."""
    rec = drop_acc_by_seed(training_night(seed, night_s, density, ranges).recording(), seed, NO_ACC_FRACTION)
    out = run_recording(rec, None, keep_features=True)
    assert out.features is not None and out.window_end_s is not None
    return out.features, window_labels(out.window_end_s, rec.annotations)


def _night_windows_args(args: tuple[int, float, float]) -> tuple[np.ndarray, np.ndarray]:
    return night_windows(*args)


def negative_windows(path: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a real recording known to hold no cramp or spasm (and the same padded with rest).

    Active windows (above ACTIVE_LOG_LEVEL) are labelled ``movement``, the rest ``other``.
    """
    from crampwatch.errors import RecordingError
    from crampwatch.formats import read_recording

    from ..features.context import ACTIVE_LOG_LEVEL

    try:
        rec = read_recording(path)
    except RecordingError as err:
        log.warning("negatives: skipping %s", err)
        return np.zeros((0, len(NAMES))), np.zeros(0, dtype=str)
    rec = drop_acc_by_seed(rec, seed, NEGATIVE_NO_ACC_FRACTION)
    xs, ys = [], []
    for variant in (rec, _padded_with_rest(rec, seed)):
        out = run_recording(variant, None, keep_features=True)
        assert out.features is not None
        active = out.features[:, NAMES.index("emg_rel_hi")] > ACTIVE_LOG_LEVEL
        xs.append(out.features)
        ys.append(np.where(active, "movement", "other"))
    return np.vstack(xs), np.concatenate(ys)


def _negative_windows_args(args: tuple[str, int]) -> tuple[np.ndarray, np.ndarray]:
    return negative_windows(*args)


@dataclass(frozen=True)
class LabeledSet:
    """Windows of the labeled recordings, and what the card says about them."""

    xs: list[np.ndarray]
    ys: list[np.ndarray]
    summary: dict[str, Any]


def labeled_windows(paths: tuple[str, ...], *, progress: bool = True) -> LabeledSet:
    """Features and labels of every window of labeled recordings (truth as ``evaluate`` finds it).

    Truth types other than the window classes (``cramp``, ``spasm``, ``plm``, ``movement`` and the
    simulator's look-alikes) leave their windows ``other``; they are counted in the card.
    """
    from ..evaluate import case_truth, file_cases

    xs, ys, files = [], [], []
    ignored: dict[str, int] = {}
    hours = 0.0
    for case in tqdm(file_cases([Path(p) for p in paths]), desc="labeled recordings", disable=not progress):
        rec = case.load()
        truth, source = case_truth(case, rec)
        for a in truth:
            if a.type not in _CLASS_OF:
                ignored[a.type] = ignored.get(a.type, 0) + 1
        out = run_recording(rec, None, keep_features=True)
        assert out.features is not None and out.window_end_s is not None
        xs.append(out.features)
        ys.append(window_labels(out.window_end_s, truth))
        files.append({"path": case.name, "truth": source, "events": len(truth), "windows": len(ys[-1])})
        hours += rec.duration_s / 3600
    if ignored:
        log.warning("labeled: truth types that are not window classes, left as 'other': %s", ignored)
    return LabeledSet(xs, ys, {"files": files, "hours": round(hours, 3), "ignored_types": ignored})


@dataclass(frozen=True)
class TrainingSet:
    """Every training window: features ``x``, class ``y`` and ``group`` (one per night or file, for CV)."""

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    seeds: list[int]
    negative_files: list[str]
    labeled: LabeledSet | None


def training_set(cfg: TrainConfig, *, progress: bool = True) -> TrainingSet:
    """The windows of the simulated training nights, the real negatives and the labeled recordings."""
    seeds = training_seeds(cfg)
    jobs = [(s, cfg.night_s, cfg.density) for s in seeds]
    xs, ys = [], []
    groups: list[np.ndarray] = []

    def add(x: np.ndarray, y: np.ndarray) -> None:  # one group per night or file, for grouped CV
        xs.append(x)
        ys.append(y)
        groups.append(np.full(len(y), len(groups)))

    with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        for x, y in tqdm(
            pool.map(_night_windows_args, jobs),
            total=len(jobs),
            desc="training nights",
            disable=not progress,
            unit="night",
        ):
            add(x, y)
        neg_files = expand(cfg.negatives)
        neg_jobs = [(path, cfg.seed * 7919 + i) for i, path in enumerate(neg_files)]
        for x, y in tqdm(
            pool.map(_negative_windows_args, neg_jobs),
            total=len(neg_jobs),
            desc="real negatives",
            disable=not progress or not neg_jobs,
            unit="file",
        ):
            add(x, y)
    labeled = labeled_windows(cfg.labeled, progress=progress) if cfg.labeled else None
    if labeled is not None:
        for x, y in zip(labeled.xs, labeled.ys, strict=True):
            add(x, y)
    return TrainingSet(np.vstack(xs), np.concatenate(ys), np.concatenate(groups), seeds, neg_files, labeled)
