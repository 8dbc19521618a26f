"""A model file from an untrusted place never runs code: hash against the card, skops allow-list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crampwatch.errors import ModelError
from detector.model import DEFAULT_MODEL, card_path, file_sha256, load_model


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / DEFAULT_MODEL.name
    shutil.copy(DEFAULT_MODEL, target)
    shutil.copy(card_path(DEFAULT_MODEL), card_path(target))
    return target


def test_shipped_model_loads_and_matches_its_card(tmp_path: Path) -> None:
    model = load_model(_copy(tmp_path))
    assert set(model.classes) >= {"cramp", "spasm"}
    assert model.card["sha256"]


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its card"):
        load_model(path)


def test_model_without_card_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    card_path(path).unlink()
    with pytest.raises(ModelError, match=r"card .* not found"):
        load_model(path)


def test_card_for_other_features_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["features"] = card["features"][:-1]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="other features"):
        load_model(path)


def test_missing_model_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cramp-detector train"):
        load_model(tmp_path / "nope.skops")


def test_card_for_other_emg_only_features_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["features_without_acc"] = card["features_without_acc"][1:]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="other features"):
        load_model(path)


def test_archive_with_other_contents_is_refused(tmp_path: Path) -> None:
    import skops.io as sio

    shipped = load_model(DEFAULT_MODEL)
    path = tmp_path / "odd.skops"
    sio.dump({"with_acc": shipped.estimator}, path)  # the EMG-only classifier is missing
    card = {**shipped.card, "sha256": file_sha256(path)}
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="'with_acc' and 'without_acc'"):
        load_model(path)
