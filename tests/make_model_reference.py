"""Write ``tests/data/model_reference.npz`` from the ``.skops`` model the shipped ``.npz`` is converted from.

``python -m tests.make_model_reference SOURCE.skops`` (after ``python -m detector.model convert SOURCE.skops
detector/models/cramp-model.npz``): scikit-learn's own probabilities on the rows of
``tests/unit/test_forest.py::reference_rows``, which the test compares the shipped model's with, bit for bit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from detector.features import EMG_ONLY_COLUMNS
from detector.model import MODEL_TYPES, file_sha256
from tests.unit.test_forest import DATA, reference_rows


def main(source: Path) -> Path:
    import skops.io as sio
    from threadpoolctl import threadpool_limits

    stored = sio.load(source, trusted=sorted(MODEL_TYPES))
    x = reference_rows()
    with threadpool_limits(limits=1, user_api="openmp"):
        with_acc = stored["with_acc"].predict_proba(x)
        without_acc = stored["without_acc"].predict_proba(x[:, EMG_ONLY_COLUMNS])
    out = DATA / "model_reference.npz"
    np.savez_compressed(out, with_acc=with_acc, without_acc=without_acc, source_sha256=np.array(file_sha256(source)))
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
