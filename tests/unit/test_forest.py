"""The numpy tree scorer equals scikit-learn's ``predict_proba`` bit for bit, and a crafted ``.npz`` model
file is refused before anything is scored.

The shipped model is checked against ``tests/data/model_reference.npz``: the probabilities scikit-learn
gave with the ``.skops`` model it was converted from (``python -m detector.model convert``), on the rows
:func:`reference_rows` builds.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from crampwatch.errors import ModelError
from detector.features import EMG_ONLY_COLUMNS, NAMES
from detector.forest import Forest, read_forests
from detector.model import DEFAULT_MODEL, card_path, convert_model, file_sha256, load_model, save_model

DATA = Path(__file__).resolve().parents[1] / "data"


def reference_rows() -> npt.NDArray[np.float64]:
    """Windows of the pinned nights, and 1,000 blends of two of them with some features missing (NaN)."""
    pinned = np.load(DATA / "pinned_features.npz")
    rows = np.concatenate([pinned["ring_features"], pinned["gap_features"]])
    rng = np.random.default_rng(16)
    a, b = rng.integers(0, len(rows), size=(2, 1000))
    w = rng.random((1000, 1))
    blends = w * rows[a] + (1 - w) * rows[b]
    blends[rng.random(blends.shape) < 0.05] = np.nan
    return np.concatenate([rows, blends])


def test_shipped_model_gives_the_probabilities_of_the_model_it_was_converted_from() -> None:
    model = load_model()
    reference = np.load(DATA / "model_reference.npz")
    source = model.card.get("converted_from", {}).get("sha256")
    assert str(reference["source_sha256"]) == source, "regenerate tests/data/model_reference.npz (docs/model.md)"
    x = reference_rows()
    assert np.array_equal(model.estimator.predict_proba(x), reference["with_acc"])
    assert model.emg_estimator is not None
    assert np.array_equal(model.emg_estimator.predict_proba(x[:, EMG_ONLY_COLUMNS]), reference["without_acc"])


def _fit(n_classes: int, seed: int, **kw: Any) -> tuple[Any, npt.NDArray[np.float64]]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 12))
    y = (x[:, 0] * 2 + x[:, 1] ** 2 + rng.normal(size=2000) > 1).astype(int) + (x[:, 2] > 0.5) * 2
    y = y % n_classes
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values: some splits send NaN left, some right
    clf = HistGradientBoostingClassifier(random_state=seed, **kw).fit(x, np.array(list("abcdef"))[y])
    test = rng.normal(size=(3000, 12)) * 1.5
    test[rng.random(test.shape) < 0.1] = np.nan
    test[:7, 3], test[7:14, 4] = np.inf, -np.inf
    return clf, test


@pytest.mark.parametrize(
    ("n_classes", "seed", "kw"),
    [
        (3, 1, {"max_iter": 30}),
        (4, 2, {"max_iter": 20, "max_leaf_nodes": 63, "learning_rate": 0.3}),
        (4, 3, {"max_iter": 10, "max_depth": 3}),
    ],
)
def test_forest_equals_scikit_learn(n_classes: int, seed: int, kw: dict[str, Any]) -> None:
    from threadpoolctl import threadpool_limits

    clf, x = _fit(n_classes, seed, **kw)
    forest = Forest.from_sklearn(clf)
    with threadpool_limits(limits=1, user_api="openmp"):
        expected = clf.predict_proba(x)
    assert forest.classes_ == tuple(clf.classes_)
    assert np.array_equal(forest.predict_proba(x), expected)
    assert np.array_equal(forest.predict_proba(x[:1]), expected[:1])
    assert forest.predict_proba(x[:0]).shape == (0, n_classes)


def test_model_written_as_npz_reads_back_equal(tmp_path: Path) -> None:
    clf, x = _fit(3, 4, max_iter=5)
    path = tmp_path / "m.npz"
    forest = Forest.from_sklearn(clf)
    with zipfile.ZipFile(path, "w") as zf:
        forest.save(zf, "with_acc")
    (back,) = read_forests(path).values()
    assert np.array_equal(back.predict_proba(x), forest.predict_proba(x))


def test_convert_keeps_the_card_and_the_probabilities(tmp_path: Path) -> None:
    """A .skops model converts to an .npz with the same card (training facts kept) and the same scores."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    shipped = load_model()
    rng = np.random.default_rng(5)
    pair = []
    for cols in (NAMES, [NAMES[i] for i in EMG_ONLY_COLUMNS]):
        x = rng.normal(size=(400, len(cols)))
        y = np.array(shipped.classes)[np.arange(400) % len(shipped.classes)]
        pair.append(HistGradientBoostingClassifier(max_iter=3).fit(x + (np.arange(400) % 5)[:, None], y))
    source = tmp_path / "old.skops"
    save_model(pair[0], source, shipped.card, pair[1])
    convert_model(source, tmp_path / "new.npz")
    old, new = load_model(source), load_model(tmp_path / "new.npz")
    card = json.loads(card_path(tmp_path / "new.npz").read_text())
    assert card["converted_from"] == {"file": "old.skops", "sha256": file_sha256(source)}
    assert card["sha256"] == file_sha256(tmp_path / "new.npz")
    assert card["code"] == shipped.card["code"] and card["training_data"] == shipped.card["training_data"]
    x = reference_rows()
    assert np.array_equal(new.probabilities(x, new.classes), old.probabilities(x, old.classes))
    assert np.array_equal(new.estimator.predict_proba(x), pair[0].predict_proba(x))


# ------------------------------------------------------------------------------------- crafted files


def _write(tmp_path: Path, arrays: dict[str, npt.NDArray[Any]], *, allow_pickle: bool = False) -> Path:
    """An .npz model with these members and a card that matches it (an attacker supplies both)."""
    path = tmp_path / "crafted.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
            zf.writestr(f"{name}.npy", buf.getvalue())
    card = json.loads(card_path(DEFAULT_MODEL).read_text())
    card_path(path).write_text(json.dumps({**card, "sha256": file_sha256(path)}))
    return path


def _shipped_arrays(**changes: Any) -> dict[str, npt.NDArray[Any]]:
    with np.load(DEFAULT_MODEL, allow_pickle=False) as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    for change in changes.values():
        change(arrays)
    return arrays


def test_unchanged_arrays_load(tmp_path: Path) -> None:
    model = load_model(_write(tmp_path, _shipped_arrays()))
    x = reference_rows()[:50]
    assert np.array_equal(model.probabilities(x, model.classes), load_model().probabilities(x, model.classes))


class Payload:
    """Pickling this runs code when unpickled; np.load with allow_pickle=False must never unpickle it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('pwned')",))


def _set(name: str, index: int, value: Any) -> Any:
    def change(arrays: dict[str, npt.NDArray[Any]]) -> None:
        arrays[f"with_acc.{name}"][index] = value

    return change


def _inner_node() -> int:
    with np.load(DEFAULT_MODEL, allow_pickle=False) as npz:
        return int(np.flatnonzero(npz["with_acc.left"] >= 0)[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("left", 0, 0), "back up it"),  # the root's child is the root: the walk never ends
        (_set("left", 0, 10**6), "outside the tree"),
        (_set("left", 0, 125), "outside the tree"),  # the next tree's root: into another tree
        (_set("left", 0, -7), "negative"),
        (_set("feature", 0, len(NAMES)), "reads a feature"),
        (_set("feature", 0, -1), "reads a feature"),
        (_set("roots", 1, 0), "out of order"),
        (lambda a: a.pop("with_acc.threshold"), "no threshold"),
        (lambda a: a.update({"with_acc.left": a["with_acc.left"].astype(np.int64)}), "left array is int64"),
        (lambda a: a.update({"with_acc.value": a["with_acc.value"][:-1]}), "differ in length"),
        (lambda a: a.update({"with_acc.n_features": np.array([60], dtype=np.int64)}), "does not read the 54"),
    ],
)
def test_crafted_npz_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    assert _inner_node() == 0
    with pytest.raises(ModelError, match=f"damaged or crafted classifier.*{message}"):
        load_model(_write(tmp_path, _shipped_arrays(c=change)))


def test_pickled_array_is_refused_and_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    arrays: dict[str, npt.NDArray[Any]] = _shipped_arrays()
    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    arrays["with_acc.value"] = evil
    path = _write(tmp_path, arrays, allow_pickle=True)
    with pytest.raises(ModelError, match=r"not a valid CrampWatch \.npz model"):
        load_model(path)
    assert not (tmp_path / "PWNED").exists()


def test_other_classifiers_are_refused(tmp_path: Path) -> None:
    arrays = {k.replace("without_acc", "emg"): v for k, v in _shipped_arrays().items()}
    with pytest.raises(ModelError, match="'with_acc' and 'without_acc'"):
        load_model(_write(tmp_path, arrays))


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"PK\x03\x04 not really")
    card_path(path).write_text(
        json.dumps({**json.loads(card_path(DEFAULT_MODEL).read_text()), "sha256": file_sha256(path)})
    )
    with pytest.raises(ModelError, match="not a valid"):
        load_model(path)
