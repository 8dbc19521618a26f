"""Fitting: the window classifier, its grouped cross-validation, and the calibration of event confidences."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from ..evaluate import BASE_TYPES
from ..model import Model
from ..offline import detect_recording
from ..scoring import match
from .config import TrainConfig
from .data import CLASSES, calibration_night, calibration_seeds


def fit(x: np.ndarray, y: np.ndarray, seed: int, cfg: TrainConfig | None = None) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    cfg = cfg if cfg is not None else TrainConfig(seed=seed)
    classes, counts = np.unique(y, return_counts=True)
    # Square-root class weights: rare events matter, without flooding the night with false alarms.
    weight_of = {c: float(np.sqrt(len(y) / (len(classes) * n))) for c, n in zip(classes, counts, strict=True)}
    weights = np.array([weight_of[c] for c in y])
    clf = HistGradientBoostingClassifier(
        max_iter=cfg.max_iter,
        learning_rate=cfg.learning_rate,
        max_leaf_nodes=cfg.max_leaf_nodes,
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

    scored = [c for c in CLASSES if c in BASE_TYPES]
    folds: list[dict[str, float]] = []
    splits = GroupKFold(n_splits=cfg.cv_folds).split(x, y, groups)
    for train_idx, test_idx in tqdm(list(splits), desc="cross-validation folds", disable=not progress, unit="fold"):
        clf = fit(x[train_idx], y[train_idx], cfg.seed, cfg)
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


def calibration_table(model: Model, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Map from an event's raw confidence to the observed chance that such an event is real.

    Fitted on validation nights drawn as the real world is (:func:`~detector.train.data.calibration_night`:
    TRAIN_RANGES with natural event rates, not boosted, so look-alikes are as common relative to true
    events as on a patient's night), held-out length, seeds apart from training and held-out. Events are
    sorted by raw confidence into up to 5 equal-count bins, each bin's share of true events is estimated
    with a Laplace prior ((hits + 1) / (n + 2), honest when there are few events), and the result is made
    monotone. A confidence of 0.8 then means about 8 in 10 such events were real.
    """
    raw_model = replace(model, card={k: v for k, v in model.card.items() if k != "calibration"})
    raw, hit = [], []
    seeds = calibration_seeds(cfg)
    for s in tqdm(seeds, desc="calibration nights", disable=not progress, unit="night"):
        night, recording = calibration_night(s, cfg.heldout_s, cfg.heldout_density)
        events = [e for e in detect_recording(recording, raw_model) if e.type in BASE_TYPES]
        truth = [a for a in night.annotations if a.type in BASE_TYPES]
        matched = {j for _, j in match(truth, events)}
        raw += [e.confidence for e in events]
        hit += [float(j in matched) for j in range(len(events))]
    xs, ys = _calibration_bins(np.asarray(raw), np.asarray(hit))
    return {
        "method": "equal-count bins of mean window probability, Laplace-smoothed share of true events, monotone",
        "ranges": "TRAIN_RANGES, natural event rates",
        "nights": cfg.calibration_nights,
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
