"""A model file from an untrusted place never runs code: exact skops allow-list, pinned and card hashes.

The shipped model is an ``.npz`` of tree arrays (its own refusals: ``tests/unit/test_forest.py``); the
``.skops`` format is still loaded for models trained before it, through the allow-list tested here on a small
scikit-learn model fitted in the test.
"""

from __future__ import annotations

import copy
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crampwatch.errors import ModelError
from detector import model as model_module
from detector.features import EMG_ONLY_NAMES, NAMES
from detector.model import (
    DEFAULT_MODEL,
    MODEL_TYPES,
    SHIPPED_MODEL_SHA256,
    Model,
    card_path,
    file_sha256,
    load_model,
    save_model,
)


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


def test_archive_with_other_contents_is_refused(fitted: dict[str, Any], tmp_path: Path) -> None:
    import skops.io as sio

    shipped = load_model(DEFAULT_MODEL)
    path = tmp_path / "odd.skops"
    sio.dump({"with_acc": fitted["with_acc"]}, path)  # the EMG-only classifier is missing
    card = {**shipped.card, "sha256": file_sha256(path)}
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="'with_acc' and 'without_acc'"):
        load_model(path)


def _malicious(tmp_path: Path, module: str, function: str, argument: str) -> Path:
    """A .skops file whose loading calls ``module.function(argument)``, with a card that matches it.

    It is what an attacker who supplies both files would send: a ``ConstructorFromReduceNode`` makes skops
    call the named function with the stored arguments while it rebuilds the object.
    """
    import skops.io as sio

    path = tmp_path / "evil.skops"
    sio.dump((argument,), path)  # a valid archive whose root is a tuple holding the argument
    with zipfile.ZipFile(path) as archive:
        schema: dict[str, Any] = json.loads(archive.read("schema.json"))
    header = {key: schema.pop(key) for key in ("protocol", "_skops_version")}
    evil = {
        "__class__": function,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": schema,
        **header,
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(evil))
    card = json.loads(card_path(DEFAULT_MODEL).read_text())
    card_path(path).write_text(json.dumps({**card, "sha256": file_sha256(path)}))
    return path


def _payload(marker: Path) -> str:
    return f"import pathlib; pathlib.Path({str(marker)!r}).write_text('pwned')"


def test_crafted_file_would_run_its_payload_if_trusted(tmp_path: Path) -> None:
    """The file below is a real exploit, so the refusals that follow are not vacuous."""
    import skops.io as sio

    marker = tmp_path / "pwned"
    path = _malicious(tmp_path, "builtins", "exec", _payload(marker))
    assert sio.get_untrusted_types(file=path) == ["builtins.exec"]
    sio.load(path, trusted=["builtins.exec"])
    assert marker.read_text() == "pwned"


def test_model_calling_builtins_exec_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _malicious(tmp_path, "builtins", "exec", _payload(marker))
    with pytest.raises(ModelError, match=r"never contains.*builtins\.exec"):
        load_model(path)
    assert not marker.exists()


def test_model_calling_os_system_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _malicious(tmp_path, "os", "system", f"touch {marker}")
    with pytest.raises(ModelError, match=r"never contains.*os\.system"):
        load_model(path)
    assert not marker.exists()


def test_allow_list_is_exact_names_of_scikit_learn_types() -> None:
    assert all(name.startswith("sklearn.") for name in MODEL_TYPES)
    assert not any(name.endswith(".") for name in MODEL_TYPES)


def test_skops_model_needs_only_allowed_types(fitted: dict[str, Any], tmp_path: Path) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    save_model(fitted["with_acc"], path, load_model(DEFAULT_MODEL).card, fitted["without_acc"])
    assert set(sio.get_untrusted_types(file=path)) <= MODEL_TYPES
    assert load_model(path).classes == load_model(DEFAULT_MODEL).classes


def test_pinned_hash_is_the_shipped_model_and_its_card() -> None:
    assert file_sha256(DEFAULT_MODEL) == SHIPPED_MODEL_SHA256
    assert json.loads(card_path(DEFAULT_MODEL).read_text())["sha256"] == SHIPPED_MODEL_SHA256


def test_replaced_shipped_model_is_refused_even_with_a_matching_card(
    shipped: Model, fitted: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who swaps both shipped files (here: another valid model) is caught by the pin."""
    path = _small_copy(fitted, tmp_path)
    assert load_model(path).classes == shipped.classes  # as some other model file, it loads
    monkeypatch.setattr(model_module, "DEFAULT_MODEL", path.resolve())
    with pytest.raises(ModelError, match=r"replaced or damaged.*SHIPPED_MODEL_SHA256"):
        load_model(path)
    with pytest.raises(ModelError, match="replaced or damaged"):
        load_model()


@pytest.fixture(scope="module")
def shipped() -> Model:
    return load_model(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def fitted(shipped: Model) -> dict[str, Any]:
    """Two small scikit-learn classifiers with the shipped model's classes and features, as
    ``cramp-detector train`` fits them (the shipped model itself is tree arrays, not scikit-learn objects)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    y = np.array(shipped.classes)[np.arange(300) % len(shipped.classes)]
    out = {}
    for key, n in (("with_acc", len(NAMES)), ("without_acc", len(EMG_ONLY_NAMES))):
        x = rng.normal(size=(300, n)) + (np.arange(300) % len(shipped.classes))[:, None]
        out[key] = HistGradientBoostingClassifier(max_iter=2, max_leaf_nodes=7).fit(x, y)
    return out


def _small_copy(fitted: dict[str, Any], tmp_path: Path, field: str = "", value: int = 0) -> Path:
    """The small scikit-learn model cut to its first boosting iteration, with one field of the first
    tree's root node set to ``value``, saved with skops, and a card that matches."""
    import skops.io as sio

    shipped = load_model(DEFAULT_MODEL)
    classifiers: dict[str, Any] = {}
    pairs: tuple[tuple[str, Any], ...] = (("with_acc", fitted["with_acc"]), ("without_acc", fitted["without_acc"]))
    for key, estimator in pairs:
        small = copy.copy(estimator)
        small._predictors = [[copy.copy(tree) for tree in estimator._predictors[0]]]
        classifiers[key] = small
    if field:
        tree = classifiers["with_acc"]._predictors[0][0]
        tree.nodes = tree.nodes.copy()
        tree.nodes[0][field] = value
    path = tmp_path / "small.skops"
    sio.dump(classifiers, path)
    card_path(path).write_text(json.dumps({**shipped.card, "sha256": file_sha256(path)}))
    return path


def test_small_skops_model_loads(shipped: Model, fitted: dict[str, Any], tmp_path: Path) -> None:
    model = load_model(_small_copy(fitted, tmp_path))
    assert model.classes == shipped.classes


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("left", 10**6, "outside the tree"),
        ("right", 0, "back up it"),  # the root's child is the root: the walk never ends
        ("feature_idx", 54, "reads a feature"),
        ("is_categorical", 1, "categorical split"),
    ],
)
def test_crafted_tree_is_refused(fitted: dict[str, Any], tmp_path: Path, field: str, value: int, message: str) -> None:
    """skops trusts TreePredictor only because MODEL_TYPES says so; its node indices are checked here."""
    with pytest.raises(ModelError, match=f"damaged or crafted classifier.*{message}"):
        load_model(_small_copy(fitted, tmp_path, field, value))
