"""The shipped model's card is consistent: disjoint seed blocks, a usable calibration, honest held-out scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detector.model import DEFAULT_MODEL, Model, load_model


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(DEFAULT_MODEL)


def _block(seeds: list[int]) -> range:
    return range(seeds[0], seeds[1] + 1)


def test_training_calibration_and_heldout_seeds_do_not_overlap(model: Model) -> None:
    card = model.card
    train = _block(card["training_data"]["seeds"])
    calibration = _block(card["calibration"]["seeds"])
    heldout = _block(card["heldout"]["seeds"])
    assert len(train) == card["training_data"]["nights"]
    assert len(heldout) == card["heldout"]["nights"]
    assert not set(train) & set(calibration)
    assert not set(train) & set(heldout)
    assert not set(calibration) & set(heldout)
    assert card["heldout"]["ranges"] == "HELDOUT_RANGES"


def test_calibration_is_monotone_and_maps_into_it(model: Model) -> None:
    table = model.card["calibration"]
    raw, calibrated = np.array(table["raw"]), np.array(table["calibrated"])
    assert raw.size == calibrated.size >= 2
    assert np.all(np.diff(raw) > 0)
    assert np.all(np.diff(calibrated) >= 0)
    assert np.all((calibrated > 0) & (calibrated < 1))
    assert table["events"] >= table["true_events"] > 0
    # Below the table's range the lowest bin applies, above it the highest, in between it interpolates.
    assert model.calibrated(0.0) == pytest.approx(calibrated[0])
    assert model.calibrated(1.0) == pytest.approx(calibrated[-1])
    middle = model.calibrated(float(raw[:2].mean()))
    assert calibrated[0] <= middle <= calibrated[1]


def test_heldout_scores_are_consistent_counts(model: Model) -> None:
    for kind in ("cramp", "spasm"):
        s = model.card["heldout"]["scores"][kind]
        assert 0 <= s["matched"] <= min(s["true"], s["predicted"])
        precision = s["matched"] / s["predicted"] if s["predicted"] else 1.0
        recall = s["matched"] / s["true"] if s["true"] else 1.0
        assert s["precision"] == pytest.approx(precision, abs=1e-4)
        assert s["recall"] == pytest.approx(recall, abs=1e-4)
        assert s["false_alarms_per_hour"] == pytest.approx((s["predicted"] - s["matched"]) / s["hours"], abs=1e-3)


@pytest.mark.parametrize(
    ("field", "value"),
    [("cv_folds", 1), ("cv_folds", -2), ("nights", 0), ("heldout_nights", 0), ("calibration_nights", 0)],
)
def test_train_config_names_the_flag_it_rejects(field: str, value: int) -> None:
    from crampwatch.errors import ConfigError
    from detector.train import TrainConfig

    flag = "--" + field.replace("_", "-")
    with pytest.raises(ConfigError, match=flag):
        changes: dict[str, Any] = {field: value}
        TrainConfig(**changes)


def test_calibration_bins_pool_confidences_that_round_alike() -> None:
    from detector.train.fit import _calibration_bins

    # 40 events make 4 bins of 10: two uncertain (half real), then two at ~1.0 with one rounded mean.
    raw = np.concatenate([np.linspace(0.5, 0.9, 20), np.full(20, 0.99999)])
    hit = np.concatenate([np.tile([0.0, 1.0], 10), np.ones(20)])
    xs, ys = _calibration_bins(raw, hit)
    assert len(xs) == len(ys) == 3
    assert np.all(np.diff(xs) > 0)
    assert xs[-1] == 1.0
    assert ys[-1] == pytest.approx(21 / 22)  # the two 1.0 bins pooled: 20 hits of 20, Laplace-smoothed


def test_the_default_recipe_is_the_shipped_models(model: Model) -> None:
    """`cramp-detector train` with default sizes repeats the shipped model's run: command, sizes and seeds."""
    from detector.train import TrainConfig
    from detector.train.data import calibration_seeds, heldout_seed, training_seeds

    card = model.card
    paths = card["command"].split()
    cfg = TrainConfig(
        negatives=tuple(paths[i + 1] for i, p in enumerate(paths) if p == "--negatives"),
        check=tuple(paths[i + 1] for i, p in enumerate(paths) if p == "--check"),
    )
    assert cfg.command() == card["command"]
    seeds = training_seeds(cfg), calibration_seeds(cfg), [heldout_seed(i, cfg.seed) for i in range(cfg.heldout_nights)]
    assert [[s[0], s[-1]] for s in seeds] == [card[k]["seeds"] for k in ("training_data", "calibration", "heldout")]
    assert (cfg.night_s, cfg.density) == (card["training_data"]["night_s"], card["training_data"]["event_density"])
    assert (cfg.calibration_nights, cfg.heldout_s) == (card["calibration"]["nights"], card["calibration"]["night_s"])
    assert (cfg.heldout_nights, cfg.heldout_s, cfg.heldout_density) == tuple(
        card["heldout"][k] for k in ("nights", "night_s", "density")
    )
