"""Loading, verifying and saving the window classifier.

A model is two files side by side: ``<name>.skops`` (the fitted scikit-learn estimators, in skops'
format, which rebuilds objects without running pickled code) and ``<name>.card.json`` (its model card:
training data, seeds, features, class balance, scores, library versions and the file's SHA-256). The
shipped model lives in ``detector/models/``, package data, so an installed wheel finds it without a path.

The archive holds two classifiers: one on every feature, for windows with accelerometer data, and one on
the EMG-only features, for windows without (a sensor with no accelerometer, or its ACC stream lost). One
classifier with the ACC columns left empty learns the ACC-free case from only the few nights that lack
it, and weighting those up cost accuracy with the accelerometer; two classifiers need no compromise.

Loading is safe against a model from an untrusted place. skops rebuilds only the types it trusts by
default (primitives, containers, numpy arrays and dtypes) plus the exact types of ``MODEL_TYPES``, the
scikit-learn types a CrampWatch model is made of; a file that needs any other type (``builtins.exec``,
``os.system``, ...) is refused before anything in it is rebuilt. The shipped model must also have the hash
pinned in ``SHIPPED_MODEL_SHA256``, and every model the hash in its card (which catches damage, not an
attacker who supplies both files: for those the allow-list is the guard). Every refusal is a ModelError
saying what to do.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crampwatch.errors import ModelError

from .features import EMG_ONLY_COLUMNS, EMG_ONLY_NAMES, NAMES
from .forest import Forest, read_forests, write_forests
from .paths import DEFAULT_MODEL as DEFAULT_MODEL  # re-exported: its home is detector.paths

FloatArray = npt.NDArray[np.float64]


#: SHA-256 of the shipped model file. A card travels with its model, so an attacker who replaces one can
#: replace both; this hash travels with the code. Retraining the shipped model means updating it here.
SHIPPED_MODEL_SHA256 = "3a9b0b94ee5a8c0076d6e043b0ce58c29c1808a6ae9ef39c1b73dc6862a70925"

#: The only types trusted on top of skops' defaults: the scikit-learn types a CrampWatch model (two
#: HistGradientBoosting classifiers in a dict) is made of, i.e. every type in the shipped model's skops
#: schema that is not a builtin container or a numpy array. Exact names, no prefixes.
#: ``skops.io.get_untrusted_types`` on the shipped model reports only ``TreePredictor`` with skops 0.16;
#: older skops versions also report the loss, link and binning types. A file that needs anything else is
#: refused; no ``builtins`` name is ever trusted here, so ``builtins.exec`` and friends stay out.
MODEL_TYPES = frozenset(
    {
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.preprocessing._label.LabelEncoder",
    }
)

# A window has no accelerometer data when this column is NaN.
_ACC_KEY = NAMES.index("acc_log_activity")


def card_path(model_path: Path) -> Path:
    return model_path.with_suffix(".card.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Model:
    """A verified, loaded model and its card.

    ``estimator`` reads every column of ``NAMES``; ``emg_estimator`` (when the model has one) reads
    ``EMG_ONLY_NAMES`` and scores the windows that have no accelerometer data.
    """

    estimator: Forest
    classes: tuple[str, ...]
    card: dict[str, Any]
    path: Path
    emg_estimator: Forest | None = None

    def calibrated(self, confidence: float) -> float:
        """Map an event's mean window probability to the chance it is a true event (the card's table)."""
        table = self.card.get("calibration")
        if not table:
            return confidence
        return float(np.interp(confidence, table["raw"], table["calibrated"]))

    def probabilities(self, x: FloatArray, types: tuple[str, ...]) -> FloatArray:
        """Probability of each of ``types`` for each row of ``x`` (0 for a type the model lacks)."""
        # numpy, one thread: detection scales out over processes.
        proba = self._predict_proba(x)
        out = np.zeros((x.shape[0], len(types)))
        for j, name in enumerate(types):
            if name in self.classes:
                out[:, j] = proba[:, self.classes.index(name)]
        return out

    def _predict_proba(self, x: FloatArray) -> FloatArray:
        if self.emg_estimator is None:
            return self.estimator.predict_proba(x)
        # Each row is scored on its own, so splitting the batch changes no result.
        no_acc = np.isnan(x[:, _ACC_KEY])
        out = np.empty((x.shape[0], len(self.classes)))
        if not no_acc.all():
            out[~no_acc] = self.estimator.predict_proba(x[~no_acc])
        if no_acc.any():
            out[no_acc] = self.emg_estimator.predict_proba(x[no_acc][:, EMG_ONLY_COLUMNS])
        return out


def load_model(path: Path | str | None = None) -> Model:
    """Load and verify a model; raises ModelError with the fix when it cannot be used."""
    model_path = Path(path) if path else DEFAULT_MODEL
    card_file = card_path(model_path)
    if not model_path.is_file():
        raise ModelError(f"model file {model_path} not found; train one with `cramp-detector train` or pass --model")
    if not card_file.is_file():
        raise ModelError(f"model card {card_file} not found; a model is only loaded next to its card")
    try:
        card = json.loads(card_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"model card {card_file} is unreadable: {err}") from None
    expected = card.get("sha256")
    actual = file_sha256(model_path)
    if model_path.resolve() == DEFAULT_MODEL and actual != SHIPPED_MODEL_SHA256:
        raise ModelError(
            f"the shipped model {model_path} has sha256 {actual[:12]}..., not the {SHIPPED_MODEL_SHA256[:12]}... "
            "this version of CrampWatch ships: it was replaced or damaged. Reinstall CrampWatch, or pass your own "
            "model with --model. If you retrained the shipped model on purpose, set SHIPPED_MODEL_SHA256 in "
            f"detector/model.py to {actual}."
        )
    if expected != actual:
        raise ModelError(
            f"model file {model_path} does not match its card (sha256 {actual[:12]}... != "
            f"{str(expected)[:12]}...): it was changed after training. Restore the original file or "
            "retrain with `cramp-detector train`."
        )
    # The same verified bytes with the same card give the same model: reuse it rather than unpack 27 MB
    # again (evaluate, batch workers and the tests load the shipped model many times). Every check above
    # still runs on each call, so a replaced or damaged file is never served from here.
    verified = (str(model_path.resolve()), actual, json.dumps(card, sort_keys=True))
    if verified in _VERIFIED:
        return _VERIFIED[verified]
    if model_path.suffix == ".skops":
        estimator, emg_estimator = _read_skops(model_path)
    else:
        forests = read_forests(model_path)
        if set(forests) not in ({"with_acc"}, {"with_acc", "without_acc"}):
            raise ModelError(
                f"model file {model_path} holds {sorted(forests)}, not the classifiers 'with_acc' and 'without_acc'"
            )
        estimator, emg_estimator = forests["with_acc"], forests.get("without_acc")
    stale = tuple(card.get("features", ())) != NAMES or (
        emg_estimator is not None and tuple(card.get("features_without_acc", ())) != EMG_ONLY_NAMES
    )
    if stale:
        raise ModelError(
            f"model {model_path} was trained on other features than this version computes; "
            "retrain it with `cramp-detector train`"
        )
    # After the card's feature check, so a model from an older version gets "retrain" rather than this.
    for est, n_features in ((estimator, len(NAMES)), (emg_estimator, len(EMG_ONLY_NAMES))):
        if est is not None and est.n_features_in_ != n_features:
            raise ModelError(
                f"model file {model_path} holds a damaged or crafted classifier (it does not read the "
                f"{n_features} numeric features of this version), so it was not loaded; "
                "use a model trained with `cramp-detector train`."
            )
    classes = tuple(str(c) for c in card["classes"])
    for est in (estimator, emg_estimator):
        if est is not None and tuple(str(c) for c in est.classes_) != classes:
            raise ModelError(f"model {model_path}: classes in the card and in the estimator differ")
    model = Model(estimator=estimator, classes=classes, card=card, path=model_path, emg_estimator=emg_estimator)
    _VERIFIED[verified] = model
    return model


def _read_skops(model_path: Path) -> tuple[Forest, Forest | None]:
    """The classifiers of a ``.skops`` model (the format before ``.npz``), as forests.

    Needs scikit-learn and skops, which the ``.npz`` format does not; ``python -m detector.model convert``
    turns such a file into an ``.npz`` one.
    """
    import skops.io as sio  # imported here: it is slow to import and only needed for this format
    from skops.io.exceptions import UntrustedTypesFoundException

    # One pass: skops audits every type against `trusted` before it rebuilds anything, so asking
    # get_untrusted_types first only parsed the archive twice (a third of the load time). It is asked
    # only to name the refused types.
    try:
        stored = sio.load(model_path, trusted=sorted(MODEL_TYPES))
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(file=model_path)) - MODEL_TYPES)
        raise ModelError(
            f"model file {model_path} needs types a CrampWatch model never contains, so it was not loaded: "
            f"{', '.join(refused)}. It may be built to run code when loaded; use a model trained with "
            "`cramp-detector train`."
        ) from None
    except Exception as err:  # skops raises several types for a corrupt archive
        raise ModelError(f"model file {model_path} is not a valid skops archive: {err}") from None
    # A dict holds both classifiers; a bare estimator is a model from before the EMG-only one.
    estimator, emg_estimator = stored, None
    if isinstance(stored, dict):
        if set(stored) != {"with_acc", "without_acc"}:
            raise ModelError(
                f"model file {model_path} holds {sorted(stored)}, not the classifiers 'with_acc' and 'without_acc'"
            )
        estimator, emg_estimator = stored["with_acc"], stored["without_acc"]
    _check_trees(estimator, len(NAMES), model_path)
    if emg_estimator is not None:
        _check_trees(emg_estimator, len(EMG_ONLY_NAMES), model_path)
    return Forest.from_sklearn(estimator), None if emg_estimator is None else Forest.from_sklearn(emg_estimator)


#: Models loaded so far, by (resolved path, file sha256, card); see load_model.
_VERIFIED: dict[tuple[str, str, str], Model] = {}


def _check_trees(estimator: Any, n_features: int, model_path: Path) -> None:
    """Refuse a classifier whose trees would make scikit-learn read outside its arrays.

    skops checks types, not contents, and scikit-learn walks a tree's nodes without bounds checks: a crafted
    ``TreePredictor`` can crash the detector at its first prediction (why skops does not trust that type by
    default; see ``UNTRUSTED_TYPE_REASONS`` in ``skops.io.exceptions``). A tree ``cramp-detector train``
    grows has no categorical split, reads only the model's features, and numbers each child after its
    parent, so every walk stays inside the tree and ends at a leaf.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    def refuse(why: str) -> ModelError:
        return ModelError(
            f"model file {model_path} holds a damaged or crafted classifier ({why}), so it was not loaded; "
            "use a model trained with `cramp-detector train`."
        )

    if type(estimator) is not HistGradientBoostingClassifier:
        raise refuse(f"a {type(estimator).__name__}, not a HistGradientBoostingClassifier")
    if getattr(estimator, "n_features_in_", None) != n_features or getattr(estimator, "is_categorical_", 0) is not None:
        raise refuse(f"it does not read the {n_features} numeric features of this version")
    iterations = getattr(estimator, "_predictors", None)
    if not isinstance(iterations, list) or not all(isinstance(trees, list) for trees in iterations):
        raise refuse("its trees are not a list of lists")
    trees = [tree for trees in iterations for tree in trees]
    if not trees or not all(
        type(tree) is TreePredictor
        and isinstance(tree.nodes, np.ndarray)
        and tree.nodes.dtype == PREDICTOR_RECORD_DTYPE
        and tree.nodes.ndim == 1
        and tree.nodes.size > 0
        for tree in trees
    ):
        raise refuse("a tree is not an array of nodes")
    # All trees at once: each node's index inside its tree, and its tree's size.
    sizes = np.array([tree.nodes.size for tree in trees], dtype=np.int64)
    # As bytes: concatenating structured arrays field by field is ten times slower.
    nodes = np.concatenate([np.ascontiguousarray(tree.nodes).view(np.uint8) for tree in trees]).view(
        PREDICTOR_RECORD_DTYPE
    )
    tree_size = np.repeat(sizes, sizes)
    index = np.arange(nodes.size, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    inner = nodes["is_leaf"] == 0
    if nodes["is_categorical"][inner].any():
        raise refuse("a tree has a categorical split")
    feature = nodes["feature_idx"][inner]
    if ((feature < 0) | (feature >= n_features)).any():
        raise refuse("a tree reads a feature the model does not have")
    for child in (nodes["left"][inner].astype(np.int64), nodes["right"][inner].astype(np.int64)):
        if ((child <= index[inner]) | (child >= tree_size[inner])).any():
            raise refuse("a tree's child index points outside the tree or back up it")


def save_model(estimator: Any, path: Path, card: dict[str, Any], emg_estimator: Any | None = None) -> Path:
    """Write the classifiers and their card (with the file's hash); returns the card path.

    ``estimator`` was fitted on ``NAMES``, ``emg_estimator`` (optional) on ``EMG_ONLY_NAMES``; each is a
    fitted ``HistGradientBoostingClassifier`` or a :class:`Forest`. The format follows the suffix: ``.npz``
    (tree arrays, what CrampWatch ships and loads fastest) or ``.skops`` (the scikit-learn objects, for
    work in scikit-learn; needs scikit-learn estimators).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".skops":
        import zipfile

        import skops.io as sio

        # Deflated: the archive is mostly a JSON schema and small arrays.
        obj = estimator if emg_estimator is None else {"with_acc": estimator, "without_acc": emg_estimator}
        sio.dump(obj, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    else:
        forests = {"with_acc": _forest(estimator)}
        if emg_estimator is not None:
            forests["without_acc"] = _forest(emg_estimator)
        write_forests(path, forests)
    card = {**card, "sha256": file_sha256(path), "features": list(NAMES)}
    if emg_estimator is not None:
        card["features_without_acc"] = list(EMG_ONLY_NAMES)
    card["classes"] = [str(c) for c in estimator.classes_]
    out = card_path(path)
    out.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return out


def _forest(estimator: Any) -> Forest:
    return estimator if isinstance(estimator, Forest) else Forest.from_sklearn(estimator)


def convert_model(source: Path, target: Path) -> Path:
    """Write the verified model ``source`` (any format, e.g. a ``.skops`` file) as ``target`` (``.npz``)
    with the same card: the same trees, so the same probabilities; returns the new card's path.

    The card keeps everything it says about training (code commit, recipe and window hashes, scores) and
    records the file it was converted from.
    """
    if target.suffix != ".npz":
        raise ModelError(f"convert writes an .npz model; name the target {target.with_suffix('.npz')}")
    model = load_model(source)
    card = {**model.card, "converted_from": {"file": source.name, "sha256": model.card.get("sha256")}}
    return save_model(model.estimator, target, card, model.emg_estimator)


def main(argv: list[str] | None = None) -> int:
    """``python -m detector.model convert SOURCE [TARGET]``: see :func:`convert_model`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m detector.model", description=convert_model.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="write a model (e.g. .skops) as .npz with the same card")
    conv.add_argument("source", type=Path)
    conv.add_argument("target", type=Path, nargs="?", help="default: SOURCE with the suffix .npz")
    args = parser.parse_args(argv)
    target = args.target or args.source.with_suffix(".npz")
    try:
        convert_model(args.source, target)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    digest = file_sha256(target)
    print(f"{target}: sha256 {digest}")
    if target.resolve() == DEFAULT_MODEL:
        print(f"the shipped model: set SHIPPED_MODEL_SHA256 = {digest!r} in detector/model.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
