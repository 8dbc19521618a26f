"""The model card: what the model was trained on, how it was fitted, and how it scored.

Sections, in the order they are written: the training run (:func:`training_card`), grouped
cross-validation (:mod:`.fit`), ``calibration`` (:func:`~.fit.calibration_table`), ``heldout``
(:func:`heldout_section`: :func:`detector.evaluate.evaluate_simulated`, the same scoring as
``cramp-detector evaluate --simulated``) and ``real_no_cramp_check`` (:func:`real_check`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import BASE_TYPES, evaluate_simulated, model_detector
from ..model import DEFAULT_MODEL, Model, card_path, file_sha256, load_model, save_model
from ..offline import detect_recording
from ..scoring import format_table, split_by_accelerometer
from .config import TrainConfig
from .data import NO_ACC_FRACTION, RATE_BOOST, TrainingSet, expand
from .fit import calibration_table

log = logging.getLogger(__name__)


def code_version() -> dict[str, Any]:
    """The commit the model was trained from, and whether the work tree had uncommitted changes."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def data_hashes(data: TrainingSet) -> dict[str, Any]:
    """Two fingerprints of the training data.

    ``windows_sha256``: SHA-256 of the feature matrix (float64, C order) followed by the labels (UTF-8, one
    per line): the exact windows fitted on. ``recipe_sha256``: SHA-256 of what generated them (the
    simulator's TRAIN_RANGES and rate boosts as ``repr``, the seeds, and the SHA-256 of every real file
    read: the simulator's real floor / voluntary pool, the negatives and labeled recordings).
    """
    from crampwatch.simulate import TRAIN_RANGES
    from crampwatch.simulate._real import real_pool

    windows = hashlib.sha256(np.ascontiguousarray(data.x, dtype=np.float64).tobytes())
    windows.update("\n".join(str(v) for v in data.y.tolist()).encode())
    pool = real_pool()
    real = dict(zip(pool.files, pool.sha256, strict=True)) if pool is not None else {}
    for path in data.negative_files:
        real[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    recipe = hashlib.sha256(
        json.dumps(
            {"ranges": repr(TRAIN_RANGES), "boost": RATE_BOOST, "seeds": data.seeds, "real": sorted(real.items())},
            sort_keys=True,
        ).encode()
    )
    return {
        "windows_sha256": windows.hexdigest(),
        "recipe_sha256": recipe.hexdigest(),
        "simulator_real_files": len(pool.files) if pool is not None else 0,
    }


def training_card(out: Path, cfg: TrainConfig, data: TrainingSet, clf: Any, emg_clf: Any) -> dict[str, Any]:
    """The card's first sections: name, command, code, training data, estimator and library versions."""
    classes, counts = _balance(data)
    return {
        "name": out.stem,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": cfg.command(),
        "code": code_version(),
        "training_data": {
            "source": "crampwatch.simulate, domain-randomised over TRAIN_RANGES (events from TRAIN_EVENTS; a "
            "share of nights on real resting EMG with real voluntary EMG spliced in, UCI N_TXT)",
            **data_hashes(data),
            "nights": cfg.nights,
            "night_s": cfg.night_s,
            "event_density": cfg.density,
            "seeds": [data.seeds[0], data.seeds[-1]],
            "nights_without_accelerometer_fraction": NO_ACC_FRACTION,
            "event_rate_boost": RATE_BOOST,
            "real_negatives": {
                "files": len(data.negative_files),
                "paths": sorted({str(Path(p).parent) for p in data.negative_files}),
                "use": "voluntary/rest windows labelled movement/other; each also padded with 60 s of rest",
            },
            "labeled_recordings": data.labeled.summary if data.labeled is not None else None,
            "windows": len(data.y),
            "class_balance": dict(zip(classes, counts, strict=True)),
        },
        "estimator": "HistGradientBoostingClassifier (sqrt class weights, early stopping); a second one on "
        "features_without_acc scores windows without accelerometer data",
        "boosting": {
            "max_iter": cfg.max_iter,
            "max_leaf_nodes": cfg.max_leaf_nodes,
            "learning_rate": cfg.learning_rate,
        },
        "n_iter": int(getattr(clf, "n_iter_", 0)),
        "n_iter_without_acc": int(getattr(emg_clf, "n_iter_", 0)),
        "validation_score": float(clf.validation_score_[-1]) if hasattr(clf, "validation_score_") else None,
        "versions": {p: version(p) for p in ("numpy", "scipy", "scikit-learn", "skops")}
        | {"python": platform.python_version()},
    }


def _balance(data: TrainingSet) -> tuple[list[str], list[int]]:
    classes, counts = np.unique(data.y, return_counts=True)
    return [str(c) for c in classes.tolist()], [int(n) for n in counts.tolist()]


def heldout_section(model: Model, cfg: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Event scores on held-out nights from HELDOUT_RANGES (seeds disjoint from training).

    The nights and the scoring are ``cramp-detector evaluate --simulated``'s, with the scored types fixed
    to cramp and spasm so every card has the same keys.
    """
    result = evaluate_simulated(
        model_detector(model),
        cfg.heldout_nights,
        night_s=cfg.heldout_s,
        density=cfg.heldout_density,
        seed=cfg.seed,
        types=BASE_TYPES,
        progress=progress,
    )
    log.info("held-out scores:\n%s", format_table(result.pooled))
    recordings = result.recordings
    # Unlike Evaluation.by_accelerometer, one group alone is reported too: the card always says how the
    # nights without accelerometer scored, even when a tiny run drew none with one.
    by_acc = split_by_accelerometer([r.scores for r in recordings], [r.accelerometer for r in recordings])
    return {
        **{k: v for k, v in result.source.items() if k != "kind"},
        "emg_rates_hz": sorted({float(r.emg_rate_hz) for r in recordings}),
        "nights_without_accelerometer": sum(not r.accelerometer for r in recordings),
        "scores": {k: v.as_dict() for k, v in result.pooled.items()},
        "scores_by_accelerometer": {
            label.replace(" ", "_"): {k: v.as_dict() for k, v in scores.items()} for label, scores in by_acc.items()
        },
        "table": format_table(result.pooled),
    }


def real_check(model: Model, paths: tuple[str, ...]) -> dict[str, Any]:
    """Cramps and spasms found in real recordings that hold none (the goal is zero)."""
    from crampwatch.errors import RecordingError
    from crampwatch.formats import read_recording

    files = expand(paths)
    found = dict.fromkeys(BASE_TYPES, 0)
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
    """Calibrate, score on held-out nights and real no-cramp recordings, and write the card.

    The work is done on a copy in a scratch folder beside ``out``, moved into place at the end: load_model
    refuses the shipped path while its hash is not the pinned ``SHIPPED_MODEL_SHA256``, and a retrained
    shipped model has a new hash until the code is updated (logged at the end).
    """
    final = out
    scratch = out.parent / f".{out.stem}.training"
    out = scratch / final.name
    save_model(clf, out, card, emg_clf)
    calibration = calibration_table(load_model(out), cfg, progress=progress)
    if calibration["raw"]:
        card["calibration"] = calibration
    else:
        # Only a tiny run finds no event to calibrate on; an empty table would break every later
        # detection, and without one the model reports raw confidences.
        log.warning(
            "calibration: no cramp or spasm detected on %d night(s); the card has no calibration",
            cfg.calibration_nights,
        )
    save_model(clf, out, card, emg_clf)
    model = load_model(out)
    card["heldout"] = heldout_section(model, cfg, progress=progress)
    if check:
        card["real_no_cramp_check"] = real_check(model, check)
    save_model(clf, out, card, emg_clf)
    out.replace(final)
    card_path(out).replace(card_path(final))
    scratch.rmdir()
    if final.resolve() == DEFAULT_MODEL:
        log.warning(
            "retrained the shipped model: set SHIPPED_MODEL_SHA256 = %r in detector/model.py (docs/model.md)",
            file_sha256(final),
        )
    return card
