"""Gradient-boosted trees as plain numpy arrays, scored by numpy, equal to scikit-learn's ``predict_proba``.

Why not scikit-learn at detection time: importing ``sklearn.ensemble`` and unpacking a skops archive took
about 2.5 s of the 8-h night's 10 s (issue 16: a model loads in at most 0.5 s). A :class:`Forest` is the
fitted trees' node arrays, written as ``.npy`` members of a zip (``.npz``) and read back with
``allow_pickle=False``: numbers only, so reading a file cannot run code, whatever is in it. Every index in
the arrays is checked before the first prediction (:meth:`Forest.check`), so a crafted file cannot send a
walk outside its tree or round in a loop; and numpy bounds-checks every gather besides.

Scoring is exactly scikit-learn's (``HistGradientBoostingClassifier.predict_proba``, multiclass): the same
comparisons (``x <= threshold`` goes left, NaN goes where the node's ``missing_go_to_left`` says), the
leaf values summed onto the baseline in the same order, and the same softmax, so the probabilities are
bit-for-bit equal (``tests/unit/test_forest.py`` checks this against scikit-learn on fresh models, and the
shipped model against reference probabilities). Instead of walking one row down one tree at a time, every
(row, tree) pair takes one step per numpy call, and the pairs that reached a leaf are dropped every few
steps.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crampwatch.errors import ModelError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

#: The arrays of one forest in a file, and the dtype each must have.
FIELDS: dict[str, str] = {
    "feature": "int32",  # the feature an inner node compares (0 at a leaf)
    "threshold": "float64",  # x <= threshold goes left
    "missing_left": "bool",  # where NaN goes
    "left": "int32",  # the left child's index in the forest (the right child is left + 1); -1 at a leaf
    "value": "float64",  # a leaf's raw score (0 at an inner node)
    "roots": "int32",  # the first node of each tree, iteration by iteration, class by class
    "baseline": "float64",  # the raw score before the first tree, per class
    "classes": "str",
    "n_features": "int64",  # one number
}

# Rows scored per block: (rows x trees) pairs of a block stay in the CPU cache (1,024 rows x 200 trees was
# the fastest of 256-57,600 on the shipped model). Steps taken between two drops of finished pairs.
_BLOCK_ROWS = 1024
_STEPS = 6


@dataclass(frozen=True, eq=False)
class Forest:
    """One multiclass gradient-boosted classifier: ``n_iter`` iterations of one tree per class."""

    feature: IntArray
    threshold: FloatArray
    missing_left: BoolArray
    left: IntArray
    value: FloatArray
    roots: IntArray
    baseline: FloatArray
    classes_: tuple[str, ...]
    n_features_in_: int

    @property
    def n_iter(self) -> int:
        return self.roots.size // len(self.classes_)

    # -------------------------------------------------------------------------------- from scikit-learn

    @classmethod
    def from_sklearn(cls, estimator: Any) -> Forest:
        """The trees of a fitted multiclass ``HistGradientBoostingClassifier``, renumbered so that each
        inner node's right child directly follows its left one (which changes no prediction)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        if type(estimator) is not HistGradientBoostingClassifier:
            raise ModelError(f"a model holds HistGradientBoostingClassifiers, not a {type(estimator).__name__}")
        classes = tuple(str(c) for c in estimator.classes_)
        if estimator.n_trees_per_iteration_ != len(classes) or len(classes) < 3:
            raise ModelError(
                f"a model needs at least 3 classes (its trees score one class each); this one has {len(classes)}"
            )
        if getattr(estimator, "is_categorical_", None) is not None:
            raise ModelError("a model's features are all numeric; this classifier has categorical ones")
        feature: list[int] = []
        threshold: list[float] = []
        missing_left: list[bool] = []
        left: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        for trees in estimator._predictors:
            for tree in trees:
                nodes = tree.nodes
                base = len(feature)
                roots.append(base)
                # Breadth first: a node's two children get consecutive numbers.
                order = [0]
                new_left: dict[int, int] = {}
                for old in order:
                    if not nodes["is_leaf"][old]:
                        new_left[old] = base + len(order)
                        order += [int(nodes["left"][old]), int(nodes["right"][old])]
                for old in order:
                    leaf = bool(nodes["is_leaf"][old])
                    feature.append(0 if leaf else int(nodes["feature_idx"][old]))
                    threshold.append(float(nodes["num_threshold"][old]))
                    missing_left.append(bool(nodes["missing_go_to_left"][old]))
                    left.append(-1 if leaf else new_left[old])
                    value.append(float(nodes["value"][old]) if leaf else 0.0)
        baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)
        forest = cls(
            feature=np.array(feature, dtype=np.int32),
            threshold=np.array(threshold, dtype=np.float64),
            missing_left=np.array(missing_left, dtype=bool),
            left=np.array(left, dtype=np.int32),
            value=np.array(value, dtype=np.float64),
            roots=np.array(roots, dtype=np.int32),
            baseline=baseline,
            classes_=classes,
            n_features_in_=int(estimator.n_features_in_),
        )
        forest.check()
        return forest

    # -------------------------------------------------------------------------------- file

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "missing_left": self.missing_left,
            "left": self.left,
            "value": self.value,
            "roots": self.roots,
            "baseline": self.baseline,
            "classes": np.array(self.classes_, dtype=str),
            "n_features": np.array([self.n_features_in_], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]], where: str) -> Forest:
        """A forest from its arrays (as :meth:`arrays` gives them); raises ModelError if any is wrong."""

        def refuse(why: str) -> ModelError:
            return ModelError(
                f"model file {where} holds a damaged or crafted classifier ({why}), so it was not loaded; "
                "use a model trained with `cramp-detector train`."
            )

        missing = sorted(set(FIELDS) - set(arrays))
        if missing:
            raise refuse(f"no {', '.join(missing)} array")
        for name, kind in FIELDS.items():
            arr = arrays[name]
            ok = arr.dtype.kind == "U" if kind == "str" else arr.dtype == np.dtype(kind)
            if not ok or arr.ndim != 1 or (name == "n_features" and arr.size != 1):
                raise refuse(f"its {name} array is {arr.dtype} of shape {arr.shape}")
        forest = cls(
            feature=arrays["feature"],
            threshold=arrays["threshold"],
            missing_left=arrays["missing_left"],
            left=arrays["left"],
            value=arrays["value"],
            roots=arrays["roots"],
            baseline=arrays["baseline"],
            classes_=tuple(str(c) for c in arrays["classes"]),
            n_features_in_=int(arrays["n_features"][0]),
        )
        try:
            forest.check()
        except ModelError as err:
            raise refuse(str(err)) from None
        return forest

    def check(self) -> None:
        """Raise ModelError unless every walk down every tree stays inside it and ends at a leaf.

        Each inner node's children must lie after it and inside its own tree, so a walk only moves forward
        and stops at the tree's end at the latest; and it may read only the model's features.
        """
        n = self.feature.size
        k = len(self.classes_)
        if not all(a.size == n for a in (self.threshold, self.missing_left, self.left, self.value)):
            raise ModelError("its node arrays differ in length")
        if k < 3 or self.baseline.size != k or self.roots.size == 0 or self.roots.size % k:
            raise ModelError(f"{self.roots.size} trees and {self.baseline.size} baselines for {k} classes")
        roots = self.roots.astype(np.int64)
        if roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n:
            raise ModelError("its trees' first nodes are out of order")
        end = np.repeat(np.append(roots[1:], n), np.diff(np.append(roots, n)))  # each node's tree end
        index = np.arange(n, dtype=np.int64)
        inner = self.left >= 0
        child = self.left.astype(np.int64)[inner]
        if ((child <= index[inner]) | (child + 1 >= end[inner])).any():
            raise ModelError("a tree's child index points outside the tree or back up it")
        if (self.left < -1).any():
            raise ModelError("a node's child index is negative")
        feature = self.feature[inner]
        if ((feature < 0) | (feature >= self.n_features_in_)).any():
            raise ModelError("a tree reads a feature the model does not have")

    def save(self, zf: zipfile.ZipFile, prefix: str) -> None:
        """Write the arrays as ``<prefix>.<name>.npy`` members (no pickles: numbers and strings only)."""
        for name, arr in self.arrays().items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            # A fixed date: the same trees give the same bytes, so the file's hash is reproducible.
            info = zipfile.ZipInfo(f"{prefix}.{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)

    # -------------------------------------------------------------------------------- scoring

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Class probabilities of each row of ``x`` (columns in ``classes_`` order), as scikit-learn's."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected rows of {self.n_features_in_} features, got shape {x.shape}")
        k = len(self.classes_)
        # scikit-learn: raw = baseline, then each iteration's tree of class j added to column j in turn.
        raw = np.zeros((x.shape[0], k), order="F")
        raw += self.baseline.reshape(1, k)
        for start in range(0, x.shape[0], _BLOCK_ROWS):
            leaves = self._leaf_values(x[start : start + _BLOCK_ROWS]).reshape(-1, self.n_iter, k)
            block = raw[start : start + _BLOCK_ROWS]
            for i in range(self.n_iter):
                block += leaves[:, i, :]
        # sklearn.utils.extmath.softmax, step by step (so the rounding is the same).
        proba = np.array(raw, copy=True)
        proba -= proba.max(axis=1).reshape(-1, 1)
        np.exp(proba, out=proba)
        proba /= proba.sum(axis=1).reshape(-1, 1)
        return proba

    def _leaf_values(self, x: FloatArray) -> FloatArray:
        """The leaf value each row reaches in each tree: shape (rows, trees)."""
        leaf, feature, threshold, missing_right, child = self._walk()
        has_nan = bool(np.isnan(x).any())
        n_rows, n_features = x.shape
        n_trees = self.roots.size
        flat = x.reshape(-1)
        node = np.tile(self.roots, n_rows)
        row_start = np.repeat(np.arange(n_rows, dtype=np.int32) * np.int32(n_features), n_trees)
        pair = np.arange(n_rows * n_trees, dtype=np.int32)
        out = np.empty(n_rows * n_trees)
        while node.size:
            for _ in range(_STEPS):
                value = flat.take(row_start + feature.take(node))
                right = value > threshold.take(node)  # NaN compares False: decided below
                if has_nan:
                    nan = np.isnan(value)
                    right[nan] = missing_right.take(node[nan])
                node = child.take(node)
                node += right
            done = leaf.take(node)
            out[pair[done]] = self.value.take(node[done])
            todo = ~done
            node, row_start, pair = node[todo], row_start[todo], pair[todo]
        return out.reshape(n_rows, n_trees)

    def _walk(self) -> tuple[BoolArray, IntArray, FloatArray, BoolArray, IntArray]:
        """The node arrays arranged for walking: a leaf leads to itself (threshold +inf, NaN goes left), so
        pairs that reached their leaf can take further steps in lockstep with the others unchanged."""
        cached = self.__dict__.get("_walk_arrays")
        if cached is None:
            leaf = self.left < 0
            index = np.arange(self.left.size, dtype=np.int32)
            cached = (
                leaf,
                np.where(leaf, 0, self.feature).astype(np.int32),
                np.where(leaf, np.inf, self.threshold),
                ~np.where(leaf, True, self.missing_left),
                np.where(leaf, index, self.left).astype(np.int32),
            )
            object.__setattr__(self, "_walk_arrays", cached)
        return cached


def read_forests(path: Path) -> dict[str, Forest]:
    """The forests of an ``.npz`` model file by name, read without pickles and checked."""
    try:
        # Opened here: np.load leaves its own file open when the zip is damaged.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {member: npz[member] for member in npz.files}
    except Exception as err:  # a damaged zip, a pickled (object) array, a bad .npy header, ...
        raise ModelError(f"model file {path} is not a valid CrampWatch .npz model: {err}") from None
    grouped: dict[str, dict[str, npt.NDArray[Any]]] = {}
    for member, arr in arrays.items():
        name, _, field = member.partition(".")
        grouped.setdefault(name, {})[field] = arr
    return {name: Forest.from_arrays(fields, str(path)) for name, fields in grouped.items()}


def write_forests(path: Path, forests: dict[str, Forest]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, forest in forests.items():
            forest.save(zf, name)
