"""``cramp-detector train``: fit the window classifier on domain-randomised simulated nights.

Each training night draws its person, sensor and night from ``TRAIN_RANGES`` (EMG rate, gain, noise
floor, mains, ECG, ...); some nights lose their accelerometer, so the model also works without one. Window
labels come from the simulator's truth at each window's centre. The model is then scored, event by event,
on held-out nights drawn from ``HELDOUT_RANGES`` (other rates, gains and noise floors) with seeds never
used in training, through the same offline path ``detect`` uses. Everything goes into the model card.
"""

from __future__ import annotations

import logging
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from collector.recording import Annotation, Recording
from collector.simulate import HELDOUT_RANGES, TRAIN_RANGES, Night, ParamRanges

from .features import NAMES
from .model import Model, load_model, save_model
from .offline import detect_recording, run_recording
from .scoring import combine, format_table, score

log = logging.getLogger(__name__)

#: Window classes. The model learns the look-alikes as classes of their own, which sharpens the
#: boundary of cramp and spasm; only cramp and spasm become events.
CLASSES = ("other", "cramp", "spasm", "plm", "movement")
_CLASS_OF = {
    "cramp": "cramp",
    "spasm": "spasm",
    "plm": "plm",
    "turn": "movement",
    "voluntary": "movement",
    "wake": "movement",
    "artifact": "movement",
}
_PRIORITY = {"cramp": 4, "spasm": 4, "plm": 3, "movement": 2, "other": 0}
NO_ACC_FRACTION = 0.15


@dataclass(frozen=True)
class TrainConfig:
    nights: int = 48
    night_s: float = 1200.0
    density: float = 3.0
    seed: int = 1
    heldout_nights: int = 16
    heldout_s: float = 1800.0
    heldout_density: float = 2.0
    workers: int = 2


def window_labels(ends_s: npt.NDArray[np.float64], annotations: tuple[Annotation, ...]) -> npt.NDArray[np.str_]:
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


def night_windows(
    seed: int, night_s: float, density: float, ranges: ParamRanges = TRAIN_RANGES
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every window of one simulated night."""
    rec = Night(night_s, seed, ranges=ranges, event_density=density).recording()
    if np.random.default_rng([seed, 7]).random() < NO_ACC_FRACTION:
        rec = _drop_acc(rec)
    out = run_recording(rec, None, keep_features=True)
    assert out.features is not None and out.window_end_s is not None
    return out.features, window_labels(out.window_end_s, rec.annotations)


def _night_windows_args(args: tuple[int, float, float]) -> tuple[np.ndarray, np.ndarray]:
    return night_windows(*args)


def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    classes, counts = np.unique(y, return_counts=True)
    # Square-root class weights: rare events matter, without flooding the night with false alarms.
    weight_of = {c: float(np.sqrt(len(y) / (len(classes) * n))) for c, n in zip(classes, counts, strict=True)}
    weights = np.array([weight_of[c] for c in y])
    clf = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.08,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=seed,
    )
    return clf.fit(x, y, sample_weight=weights)


def evaluate_heldout(model: Model, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Event scores on held-out nights from HELDOUT_RANGES (seeds disjoint from training)."""
    per_night = []
    seeds = [1_000_000 + cfg.seed * 1000 + i for i in range(cfg.heldout_nights)]
    rates = []
    for s in tqdm(seeds, desc="held-out nights", disable=not progress, unit="night"):
        night = Night(cfg.heldout_s, s, ranges=HELDOUT_RANGES, event_density=cfg.heldout_density)
        rec = night.recording()
        rates.append(night.params.emg_rate_hz)
        events = detect_recording(rec, model)
        per_night.append(score(rec.annotations, events, cfg.heldout_s / 3600))
    pooled = combine(per_night)
    log.info("held-out scores:\n%s", format_table(pooled))
    return {
        "ranges": "HELDOUT_RANGES",
        "nights": cfg.heldout_nights,
        "night_s": cfg.heldout_s,
        "density": cfg.heldout_density,
        "seeds": [seeds[0], seeds[-1]],
        "emg_rates_hz": sorted({float(r) for r in rates}),
        "scores": {k: v.as_dict() for k, v in pooled.items()},
        "table": format_table(pooled),
    }


def train(out: Path, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train, save the model to ``out`` with its card, and return the card."""
    started = time.time()
    seeds = [cfg.seed * 100_000 + i for i in range(cfg.nights)]
    jobs = [(s, cfg.night_s, cfg.density) for s in seeds]
    xs, ys = [], []
    with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        for x, y in tqdm(
            pool.map(_night_windows_args, jobs),
            total=len(jobs),
            desc="training nights",
            disable=not progress,
            unit="night",
        ):
            xs.append(x)
            ys.append(y)
    x, y = np.vstack(xs), np.concatenate(ys)
    classes, counts = np.unique(y, return_counts=True)
    log.info("fitting on %d windows: %s", len(y), dict(zip(classes.tolist(), counts.tolist(), strict=True)))
    clf = fit(x, y, cfg.seed)
    card: dict[str, Any] = {
        "name": out.stem,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"cramp-detector train --nights {cfg.nights} --night-s {cfg.night_s:g} "
        f"--density {cfg.density:g} --seed {cfg.seed} --heldout-nights {cfg.heldout_nights}",
        "training_data": {
            "source": "collector.simulate, domain-randomised over TRAIN_RANGES",
            "nights": cfg.nights,
            "night_s": cfg.night_s,
            "event_density": cfg.density,
            "seeds": [seeds[0], seeds[-1]],
            "nights_without_accelerometer_fraction": NO_ACC_FRACTION,
            "windows": len(y),
            "class_balance": {c: int(n) for c, n in zip(classes.tolist(), counts.tolist(), strict=True)},
        },
        "estimator": "HistGradientBoostingClassifier (sqrt class weights, early stopping)",
        "n_iter": int(getattr(clf, "n_iter_", 0)),
        "validation_score": float(clf.validation_score_[-1]) if hasattr(clf, "validation_score_") else None,
        "versions": {p: version(p) for p in ("numpy", "scipy", "scikit-learn", "skops")}
        | {"python": platform.python_version()},
    }
    save_model(clf, out, card)
    model = load_model(out)
    card["heldout"] = evaluate_heldout(model, cfg, progress=progress)
    card["train_seconds"] = round(time.time() - started, 1)
    save_model(clf, out, card)  # the same estimator again, now with held-out scores in the card
    assert tuple(card.get("features", NAMES)) == NAMES
    return card
