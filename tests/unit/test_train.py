"""`cramp-detector train` with labeled recordings: EDF+ annotations or a truth CSV become window labels."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from crampwatch.formats.edf import write_edf
from crampwatch.recording import Recording
from crampwatch.simulate import simulate
from detector.features import ACC_DERIVED_NAMES, EMG_ONLY_NAMES, NAMES
from detector.model import load_model
from detector.offline import run_recording
from detector.train import TrainConfig, train
from detector.train.data import labeled_windows


@pytest.fixture(scope="module")
def night() -> Recording:
    # 500 Hz keeps the file small; two cramps in four minutes.
    rec = simulate(240, seed=356, event_density=40)
    assert [a.type for a in rec.annotations if a.type in ("cramp", "spasm")] == ["cramp", "cramp"]
    return rec


def test_edf_annotations_label_the_windows(night: Recording, tmp_path: Path) -> None:
    write_edf(night, tmp_path / "night.edf")
    labeled = labeled_windows((str(tmp_path),), progress=False)
    (y,) = labeled.ys
    (entry,) = labeled.summary["files"]
    assert entry["truth"] == "annotations"
    assert labeled.xs[0].shape[0] == len(y) == entry["windows"]
    cramp_s = sum(a.offset_s - a.onset_s for a in night.annotations if a.type == "cramp")
    assert abs(int(np.sum(y == "cramp")) - cramp_s / 0.5) <= 4  # one label per 0.5 s hop


def test_truth_csv_next_to_the_recording_wins_and_unknown_types_are_reported(night: Recording, tmp_path: Path) -> None:
    bare = Recording(emg=night.emg, acc=night.acc, source=night.source)
    write_edf(bare, tmp_path / "night.edf")
    with open(tmp_path / "night.truth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["type", "onset_s", "offset_s"])
        w.writerow(["cramp", 20.0, 56.0])
        w.writerow(["snore", 100.0, 110.0])
    labeled = labeled_windows((str(tmp_path / "night.edf"),), progress=False)
    (y,) = labeled.ys
    assert labeled.summary["files"][0]["truth"].endswith("night.truth.csv")
    assert labeled.summary["ignored_types"] == {"snore": 1}
    assert abs(int(np.sum(y == "cramp")) - 36.0 / 0.5) <= 4
    assert "spasm" not in set(y)


@pytest.fixture(scope="module")
def tiny(night: Recording, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A model trained in seconds on three short nights plus ``night`` as a labeled recording.

    Every size is tiny, the calibration nights too (48 of them took ~400 s on a busy 2-core machine).
    """
    folder = tmp_path_factory.mktemp("labeled")
    write_edf(night, folder / "night.edf")
    cfg = TrainConfig(
        nights=3, night_s=240.0, density=6.0, heldout_nights=1, heldout_s=120.0, calibration_nights=2,
        workers=1, cv_folds=0,
        labeled=(str(folder),),
    )  # fmt: skip
    out = tmp_path_factory.mktemp("model") / "tiny.npz"
    # One OpenMP thread: on a busy 2-core machine the fits' threads spin waiting for each other, which
    # took 3 to 25 times the CPU of one thread for these few windows.
    with threadpool_limits(limits=1, user_api="openmp"):
        return out, train(out, cfg, progress=False)


def test_train_adds_labeled_windows_and_writes_a_loadable_model(
    night: Recording, tiny: tuple[Path, dict[str, Any]]
) -> None:
    out, card = tiny
    data = card["training_data"]
    (entry,) = data["labeled_recordings"]["files"]
    assert entry["path"].endswith("night.edf") and entry["events"] == len(night.annotations)
    assert "--labeled" in card["command"]
    assert data["windows"] == sum(data["class_balance"].values())
    model = load_model(out)
    assert model.card["training_data"]["labeled_recordings"] == data["labeled_recordings"]


def test_windows_without_accelerometer_go_to_the_emg_only_classifier(
    night: Recording, tiny: tuple[Path, dict[str, Any]]
) -> None:
    model = load_model(tiny[0])
    assert model.emg_estimator is not None
    assert tuple(model.card["features_without_acc"]) == EMG_ONLY_NAMES
    result = run_recording(night, None, keep_features=True)
    assert result.features is not None
    x = result.features[:200]
    without = x.copy()
    without[:, [NAMES.index(n) for n in ACC_DERIVED_NAMES]] = np.nan
    mixed = np.where((np.arange(len(x)) % 3 == 0)[:, None], without, x)
    types = model.classes
    p_with, p_without, p_mixed = (model.probabilities(a, types) for a in (x, without, mixed))
    emg_cols = [NAMES.index(n) for n in EMG_ONLY_NAMES]
    assert np.allclose(p_with, model.estimator.predict_proba(x))
    assert np.allclose(p_without, model.emg_estimator.predict_proba(x[:, emg_cols]))
    assert np.array_equal(p_mixed, np.where((np.arange(len(x)) % 3 == 0)[:, None], p_without, p_with))
    assert not np.allclose(p_with, p_without)  # the two classifiers are different models


def test_card_heldout_section_is_what_evaluate_simulated_scores(
    tiny: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """One held-out recipe: the card's section and `evaluate --simulated` score the same nights alike."""
    from detector.cli import main

    out, card = tiny
    heldout = card["heldout"]
    report = tmp_path / "scores.json"
    argv = ["evaluate", "--simulated", str(heldout["nights"]), "--night-s", f"{heldout['night_s']:g}"]
    assert main([*argv, "--model", str(out), "--json", str(report), "--no-progress"]) == 0
    evaluated = json.loads(report.read_text())
    assert evaluated["source"]["seeds"] == heldout["seeds"]
    assert [r["accelerometer"] for r in evaluated["recordings"]].count(False) == heldout["nights_without_accelerometer"]
    scores = evaluated["pooled"]["scores"]
    assert {k: scores[k] for k in ("cramp", "spasm")} == _nan_as_none(heldout["scores"])
    assert set(heldout) == {
        "ranges", "nights", "night_s", "density", "seeds", "emg_rates_hz", "nights_without_accelerometer",
        "scores", "scores_by_accelerometer", "table",
    }  # fmt: skip


def _nan_as_none(value: Any) -> Any:
    """The card keeps NaN where the JSON report writes null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_as_none(v) for k, v in value.items()}
    return value
