"""``cramp-detector train``: fit the window classifier on domain-randomised simulated nights.

Labeled recordings (``--labeled``: EDF+ with annotations, or any recording with a ``type,onset_s,offset_s``
truth CSV next to it, found as ``cramp-detector evaluate`` finds it) join the training windows as they are.
Each training night draws its person, sensor and night from ``TRAIN_RANGES`` (EMG rate, gain, noise
floor, mains, ECG, ...); some nights lose their accelerometer, so the model also works without one,
and a second classifier, fitted on the EMG-only columns of every window, scores windows without ACC. Window
labels come from the simulator's truth at each window's centre. The model is then scored, event by event,
on held-out nights drawn from ``HELDOUT_RANGES`` (other rates, gains and noise floors) with seeds never
used in training, through the same offline path ``detect`` uses. Everything goes into the model card.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from crampwatch.recording import Recording, Signal
from crampwatch.simulate import HELDOUT_RANGES, TRAIN_RANGES, Night, ParamRanges

from .features import EMG_ONLY_COLUMNS, NAMES
from .model import Model, load_model, save_model
from .offline import detect_recording, run_recording
from .scoring import Interval, combine, format_table, match, score, split_by_accelerometer

log = logging.getLogger(__name__)

#: Window classes. The model learns the look-alikes as classes of their own, which sharpens the
#: boundary of cramp and spasm; only cramp and spasm become events.
CLASSES = ("other", "cramp", "spasm", "plm", "movement")
_CLASS_OF = {
    "cramp": "cramp",
    "movement": "movement",
    "spasm": "spasm",
    "plm": "plm",
    "turn": "movement",
    "voluntary": "movement",
    "wake": "movement",
    "artifact": "movement",
}
_PRIORITY = {"cramp": 4, "spasm": 4, "plm": 3, "movement": 2, "other": 0}
NO_ACC_FRACTION = 0.15
HELDOUT_NO_ACC_FRACTION = 0.25
#: Training nights over-represent the rare and the confusable, so each class has examples enough:
#: spasms (five subtypes), PLM series and the look-alikes a detector must not call a cramp or spasm.
#: (Boosting voluntary movements x6, turns x3 and artifacts x4 was tried; it scored no better on
#: natural-rate validation nights, so the look-alikes keep a moderate boost.)
RATE_BOOST = {
    "spasm_per_h": 3.0,
    "plm_series_per_h": 4.0,
    "artifact_per_h": 2.0,
    "voluntary_per_h": 2.0,
    "pop_per_h": 2.0,
    "fasciculation_per_h": 2.0,
}


@dataclass(frozen=True)
class TrainConfig:
    nights: int = 480
    night_s: float = 1200.0
    density: float = 3.0
    seed: int = 1
    heldout_nights: int = 48
    heldout_s: float = 1800.0
    heldout_density: float = 3.0
    workers: int = 2
    negatives: tuple[str, ...] = ()  # real recordings with no cramp or spasm in them, for training
    check: tuple[str, ...] = ()  # other real no-cramp recordings, only to count false events
    labeled: tuple[str, ...] = ()  # recordings (or folders) with true events, as EDF+ annotations or a truth CSV
    cv_folds: int = 3  # grouped (by night or file) cross-validation folds; 0 skips it

    def __post_init__(self) -> None:
        from crampwatch.errors import ConfigError

        if self.nights < 1:
            raise ConfigError(f"--nights must be at least 1, got {self.nights}")
        if self.heldout_nights < 1:
            raise ConfigError(f"--heldout-nights must be at least 1, got {self.heldout_nights}")
        if self.cv_folds == 1 or self.cv_folds < 0:
            # One fold would have no held-out part; say so rather than silently skip the scores.
            raise ConfigError(f"--cv-folds must be 0 (skip cross-validation) or at least 2, got {self.cv_folds}")


def training_seeds(cfg: TrainConfig) -> list[int]:
    """Seeds of the training nights (the held-out and calibration seed blocks lie elsewhere)."""
    return [cfg.seed * 100_000 + i for i in range(cfg.nights)]


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


def _drop_acc(rec: Recording) -> Recording:
    return Recording(emg=rec.emg, acc=None, annotations=rec.annotations, source=rec.source, meta=rec.meta)


def _drop_acc_by_seed(rec: Recording, seed: int, fraction: float) -> Recording:
    """``rec`` without its accelerometer for a ``fraction`` of seeds (the same seeds every run)."""
    return _drop_acc(rec) if np.random.default_rng([seed, 7]).random() < fraction else rec


def training_night(seed: int, night_s: float, density: float, ranges: ParamRanges = TRAIN_RANGES) -> Night:
    """A domain-randomised night with the rare classes boosted (RATE_BOOST)."""
    params = ranges.sample(np.random.default_rng(seed))
    params = replace(params, **{k: getattr(params, k) * v for k, v in RATE_BOOST.items()})
    return Night(night_s, seed, params=params, event_density=density)


def night_windows(
    seed: int, night_s: float, density: float, ranges: ParamRanges = TRAIN_RANGES
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every window of one simulated night."""
    rec = _drop_acc_by_seed(training_night(seed, night_s, density, ranges).recording(), seed, NO_ACC_FRACTION)
    out = run_recording(rec, None, keep_features=True)
    assert out.features is not None and out.window_end_s is not None
    return out.features, window_labels(out.window_end_s, rec.annotations)


def _night_windows_args(args: tuple[int, float, float]) -> tuple[np.ndarray, np.ndarray]:
    return night_windows(*args)


NEGATIVE_PAD_S = 60.0


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


def negative_windows(path: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a real recording known to hold no cramp or spasm (and the same padded with rest).

    Active windows (above ACTIVE_LOG_LEVEL) are labelled ``movement``, the rest ``other``.
    """
    from crampwatch.errors import RecordingError
    from crampwatch.formats import read_recording

    from .features.context import ACTIVE_LOG_LEVEL

    try:
        rec = read_recording(path)
    except RecordingError as err:
        log.warning("negatives: skipping %s", err)
        return np.zeros((0, len(NAMES))), np.zeros(0, dtype=str)
    rec = _drop_acc_by_seed(rec, seed, 0.5)
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
    from .evaluate import case_truth, file_cases

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


def _expand(paths: tuple[str, ...]) -> list[str]:
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


def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    classes, counts = np.unique(y, return_counts=True)
    # Square-root class weights: rare events matter, without flooding the night with false alarms.
    weight_of = {c: float(np.sqrt(len(y) / (len(classes) * n))) for c, n in zip(classes, counts, strict=True)}
    weights = np.array([weight_of[c] for c in y])
    clf = HistGradientBoostingClassifier(
        max_iter=500,
        learning_rate=0.08,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=seed,
    )
    return clf.fit(x, y, sample_weight=weights)


def cross_validate(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: TrainConfig, *, progress: bool = True
) -> dict[str, Any]:
    """Window-level scores of the same estimator, refitted with whole nights (and files) held out per fold.

    Windows of one night are strongly correlated, so folds split by night: a fold's score is on nights its
    model never saw, like the held-out score, but from the training ranges.
    """
    from sklearn.metrics import f1_score, precision_score, recall_score
    from sklearn.model_selection import GroupKFold

    scored = [c for c in CLASSES if c in ("cramp", "spasm")]
    folds: list[dict[str, float]] = []
    splits = GroupKFold(n_splits=cfg.cv_folds).split(x, y, groups)
    for train_idx, test_idx in tqdm(list(splits), desc="cross-validation folds", disable=not progress, unit="fold"):
        clf = fit(x[train_idx], y[train_idx], cfg.seed)
        pred = clf.predict(x[test_idx])
        fold: dict[str, float] = {}
        for metric, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
            values = fn(y[test_idx], pred, labels=scored, average=None, zero_division=0)
            fold |= {f"{c}_window_{metric}": float(v) for c, v in zip(scored, values, strict=True)}
        folds.append(fold)
    keys = folds[0].keys() if folds else ()
    return {
        "method": f"GroupKFold({cfg.cv_folds}) over training nights and real files; window labels at the centre",
        "mean": {k: round(float(np.mean([f[k] for f in folds])), 4) for k in keys},
        "std": {k: round(float(np.std([f[k] for f in folds])), 4) for k in keys},
    }


def evaluate_heldout(model: Model, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Event scores on held-out nights from HELDOUT_RANGES (seeds disjoint from training)."""
    per_night = []
    seeds = [1_000_000 + cfg.seed * 1000 + i for i in range(cfg.heldout_nights)]
    rates = []
    has_acc = []
    for s in tqdm(seeds, desc="held-out nights", disable=not progress, unit="night"):
        night = Night(cfg.heldout_s, s, ranges=HELDOUT_RANGES, event_density=cfg.heldout_density)
        rec = _drop_acc_by_seed(night.recording(), s, HELDOUT_NO_ACC_FRACTION)
        has_acc.append(rec.acc is not None)
        rates.append(night.params.emg_rate_hz)
        events = detect_recording(rec, model)
        per_night.append(score(rec.annotations, events, cfg.heldout_s / 3600))
    pooled = combine(per_night)
    without_acc = has_acc.count(False)
    log.info("held-out scores:\n%s", format_table(pooled))
    by_acc = {
        label.replace(" ", "_"): {k: v.as_dict() for k, v in scores.items()}
        for label, scores in split_by_accelerometer(per_night, has_acc).items()
    }
    return {
        "ranges": "HELDOUT_RANGES",
        "nights": cfg.heldout_nights,
        "night_s": cfg.heldout_s,
        "density": cfg.heldout_density,
        "seeds": [seeds[0], seeds[-1]],
        "emg_rates_hz": sorted({float(r) for r in rates}),
        "nights_without_accelerometer": without_acc,
        "scores": {k: v.as_dict() for k, v in pooled.items()},
        "scores_by_accelerometer": by_acc,
        "table": format_table(pooled),
    }


CALIBRATION_NIGHTS = 48
CALIBRATION_SEED = 200_000


def calibration_table(model: Model, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Map from an event's raw confidence to the observed chance that such an event is real.

    Fitted on validation nights drawn as the real world is: TRAIN_RANGES with natural event rates (not
    boosted, so look-alikes are as common relative to true events as on a patient's night), held-out
    length, seeds apart from training and held-out. Events are sorted by raw confidence into up to 5
    equal-count bins, each bin's share of true events is estimated with a Laplace prior ((hits + 1) /
    (n + 2), honest when there are few events), and the result is made monotone. A confidence of 0.8 then
    means about 8 in 10 such events were real.
    """
    raw_model = replace(model, card={k: v for k, v in model.card.items() if k != "calibration"})
    raw, hit = [], []
    seeds = [CALIBRATION_SEED + cfg.seed * 1000 + i for i in range(CALIBRATION_NIGHTS)]
    for s in tqdm(seeds, desc="calibration nights", disable=not progress, unit="night"):
        night = Night(cfg.heldout_s, s, ranges=TRAIN_RANGES, event_density=cfg.heldout_density)
        recording = _drop_acc_by_seed(night.recording(), s, NO_ACC_FRACTION)
        events = [e for e in detect_recording(recording, raw_model) if e.type in ("cramp", "spasm")]
        truth = [a for a in night.annotations if a.type in ("cramp", "spasm")]
        matched = {j for _, j in match(truth, events)}
        raw += [e.confidence for e in events]
        hit += [float(j in matched) for j in range(len(events))]
    xs, ys = _calibration_bins(np.asarray(raw), np.asarray(hit))
    return {
        "method": "equal-count bins of mean window probability, Laplace-smoothed share of true events, monotone",
        "ranges": "TRAIN_RANGES, natural event rates",
        "nights": CALIBRATION_NIGHTS,
        "night_s": cfg.heldout_s,
        "seeds": [seeds[0], seeds[-1]],
        "events": len(raw),
        "true_events": int(sum(hit)),
        "raw": xs,
        "calibrated": [round(float(y), 4) for y in np.maximum.accumulate(ys)] if ys else [],
    }


def _calibration_bins(raw: npt.NDArray[np.float64], hit: npt.NDArray[np.float64]) -> tuple[list[float], list[float]]:
    """Up to 5 equal-count bins of sorted confidences: (mean confidence to 4 places, Laplace hit share).

    A confident model puts many events at ~1.0, so neighbouring bins can share a rounded mean; they are
    pooled, because the table must rise strictly for interpolation to mean anything.
    """

    def level(b: npt.NDArray[np.intp]) -> float:
        return round(float(np.mean(raw[b])), 4)

    pooled: list[npt.NDArray[np.intp]] = []
    for b in np.array_split(np.argsort(raw), max(1, min(5, len(raw) // 10))):
        if not len(b):
            continue
        if pooled and level(b) <= level(pooled[-1]):
            pooled[-1] = np.concatenate([pooled[-1], b])
        else:
            pooled.append(b)
    xs = [level(b) for b in pooled]
    ys = [(float(np.sum(hit[b])) + 1.0) / (len(b) + 2.0) for b in pooled]
    return xs, ys


def real_check(model: Model, paths: tuple[str, ...]) -> dict[str, Any]:
    """Cramps and spasms found in real recordings that hold none (the goal is zero)."""
    from crampwatch.errors import RecordingError
    from crampwatch.formats import read_recording

    files = _expand(paths)
    found = {"cramp": 0, "spasm": 0}
    hours = 0.0
    skipped = []
    for path in files:
        try:
            rec = read_recording(path)
        except RecordingError as err:
            log.warning("check: skipping %s", err)
            skipped.append(Path(path).name)
            continue
        hours += rec.duration_s / 3600
        for e in detect_recording(rec, model):
            if e.type in found:
                found[e.type] += 1
    return {
        "files": len(files) - len(skipped),
        "skipped": skipped,
        "paths": sorted({str(Path(p).parent) for p in files}),
        "hours": round(hours, 3),
        "found": found,
    }


def finalize(
    out: Path,
    clf: Any,
    emg_clf: Any | None,
    card: dict[str, Any],
    cfg: TrainConfig,
    *,
    check: tuple[str, ...] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Calibrate, score on held-out nights and real no-cramp recordings, and write the card."""
    save_model(clf, out, card, emg_clf)
    card["calibration"] = calibration_table(load_model(out), cfg, progress=progress)
    save_model(clf, out, card, emg_clf)
    model = load_model(out)
    card["heldout"] = evaluate_heldout(model, cfg, progress=progress)
    if check:
        card["real_no_cramp_check"] = real_check(model, check)
    save_model(clf, out, card, emg_clf)
    return card


def train(out: Path, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train, save the model to ``out`` with its card, and return the card."""
    started = time.time()
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
        neg_files = _expand(cfg.negatives)
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
    x, y, group = np.vstack(xs), np.concatenate(ys), np.concatenate(groups)
    classes, counts = np.unique(y, return_counts=True)
    log.info("fitting on %d windows: %s", len(y), dict(zip(classes.tolist(), counts.tolist(), strict=True)))
    clf = fit(x, y, cfg.seed)
    # The same windows, without the accelerometer's columns: the classifier for windows that lack them.
    emg_clf = fit(x[:, EMG_ONLY_COLUMNS], y, cfg.seed)
    card: dict[str, Any] = {
        "name": out.stem,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"cramp-detector train --nights {cfg.nights} --night-s {cfg.night_s:g} "
        f"--density {cfg.density:g} --seed {cfg.seed} --heldout-nights {cfg.heldout_nights} --cv-folds {cfg.cv_folds}"
        + "".join(f" --negatives {p}" for p in cfg.negatives)
        + "".join(f" --check {p}" for p in cfg.check)
        + "".join(f" --labeled {p}" for p in cfg.labeled),
        "training_data": {
            "source": "crampwatch.simulate, domain-randomised over TRAIN_RANGES",
            "nights": cfg.nights,
            "night_s": cfg.night_s,
            "event_density": cfg.density,
            "seeds": [seeds[0], seeds[-1]],
            "nights_without_accelerometer_fraction": NO_ACC_FRACTION,
            "event_rate_boost": RATE_BOOST,
            "real_negatives": {
                "files": len(neg_files),
                "paths": sorted({str(Path(p).parent) for p in neg_files}),
                "use": "voluntary/rest windows labelled movement/other; each also padded with 60 s of rest",
            },
            "labeled_recordings": labeled.summary if labeled is not None else None,
            "windows": len(y),
            "class_balance": {c: int(n) for c, n in zip(classes.tolist(), counts.tolist(), strict=True)},
        },
        "estimator": "HistGradientBoostingClassifier (sqrt class weights, early stopping); a second one on "
        "features_without_acc scores windows without accelerometer data",
        "n_iter": int(getattr(clf, "n_iter_", 0)),
        "n_iter_without_acc": int(getattr(emg_clf, "n_iter_", 0)),
        "validation_score": float(clf.validation_score_[-1]) if hasattr(clf, "validation_score_") else None,
        "versions": {p: version(p) for p in ("numpy", "scipy", "scikit-learn", "skops")}
        | {"python": platform.python_version()},
    }
    if cfg.cv_folds:
        card["cross_validation"] = cross_validate(x, y, group, cfg, progress=progress)
        card["cross_validation_without_acc"] = cross_validate(x[:, EMG_ONLY_COLUMNS], y, group, cfg, progress=progress)
    card["train_seconds"] = round(time.time() - started, 1)
    return finalize(out, clf, emg_clf, card, cfg, check=cfg.check, progress=progress)
