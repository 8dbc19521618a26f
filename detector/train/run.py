"""``train``: data, then fitting, then the card; each stage is its own module of this package."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..features import EMG_ONLY_COLUMNS
from .card import finalize, training_card
from .config import TrainConfig
from .data import training_set
from .fit import cross_validate, fit

log = logging.getLogger(__name__)


def train(out: Path, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train, save the model to ``out`` with its card, and return the card."""
    started = time.time()
    data = training_set(cfg, progress=progress)
    classes, counts = np.unique(data.y, return_counts=True)
    log.info("fitting on %d windows: %s", len(data.y), dict(zip(classes.tolist(), counts.tolist(), strict=True)))
    clf = fit(data.x, data.y, cfg.seed, cfg)
    # The same windows, without the accelerometer's columns: the classifier for windows that lack them.
    emg_x = data.x[:, EMG_ONLY_COLUMNS]
    emg_clf = fit(emg_x, data.y, cfg.seed, cfg)
    card = training_card(out, cfg, data, clf, emg_clf)
    if cfg.cv_folds:
        card["cross_validation"] = cross_validate(data.x, data.y, data.group, cfg, progress=progress)
        card["cross_validation_without_acc"] = cross_validate(emg_x, data.y, data.group, cfg, progress=progress)
    card["train_seconds"] = round(time.time() - started, 1)
    return finalize(out, clf, emg_clf, card, cfg, check=cfg.check, progress=progress)
