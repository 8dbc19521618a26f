"""The window features and per-second summaries stay what they were: the shipped model is trained on them.

``tests/data/pinned_features.npz`` holds what the code gave before the feature code was optimised (issue
16): every ``STRIDE``-th feature row of two simulated nights, the window end times, and every summary
field. Speed work must reproduce them within float rounding (1e-9 relative); a change that is meant to
alter the features retrains the model and regenerates the file on purpose, in a commit that says why::

    python -m tests.unit.test_features_pinned   # rewrites the pinned file

The nights cover what the optimised code must keep: the resting baseline's 30-minute ring wrapping round
(night ``ring``, 31 min, two channels with an accelerometer, events dense enough for cramps and spasms)
and, in night ``gap``, an odd sample rate (512 Hz: 26-sample segments), one channel, no accelerometer and
a recorder gap filled with no-data samples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from crampwatch.recording import Annotation, Recording
from crampwatch.simulate import SimParams, simulate
from detector.offline import run_recording

PINNED = Path(__file__).parents[1] / "data" / "pinned_features.npz"
#: name -> (seconds, seed, event density, params, keep ACC, gap annotation or None, row stride)
NIGHTS: dict[str, tuple[float, int, float, SimParams, bool, tuple[float, float] | None, int]] = {
    "ring": (1860.0, 7, 6.0, SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0), True, None, 25),
    "gap": (300.0, 8, 8.0, SimParams(emg_rate_hz=512.0, n_emg_channels=1), False, (100.0, 112.5), 5),
}
RTOL = 1e-9


def night(name: str) -> Recording:
    seconds, seed, density, params, keep_acc, gap, _ = NIGHTS[name]
    rec = simulate(seconds, seed, params=params, event_density=density)
    annotations = rec.annotations + ((Annotation("gap", *gap),) if gap else ())
    return Recording(rec.emg, rec.acc if keep_acc else None, annotations, source=rec.source)


def computed(name: str, chunk_s: float = 30.0) -> dict[str, npt.NDArray[np.float64]]:
    """The pinned quantities of night ``name``, fed in ``chunk_s`` frames."""
    stride = NIGHTS[name][-1]
    out = run_recording(night(name), None, keep_features=True, chunk_s=chunk_s)
    assert out.features is not None and out.window_end_s is not None
    s = out.summaries
    return {
        f"{name}_features": out.features[::stride],
        f"{name}_window_end_s": out.window_end_s[::stride],
        f"{name}_n_windows": np.array([out.features.shape[0]], dtype=np.float64),
        f"{name}_summary": np.array(
            [[x.time_ns / 1e9, x.emg_rms_uv, x.acc_activity_g, x.data_received, x.fasciculations] for x in s]
        ),
    }


@pytest.fixture(scope="module")
def pinned() -> dict[str, npt.NDArray[np.float64]]:
    with np.load(PINNED) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("name", sorted(NIGHTS))
def test_features_as_pinned(name: str, pinned: dict[str, npt.NDArray[np.float64]]) -> None:
    got = computed(name)
    for key, value in got.items():
        want = pinned[key]
        assert value.shape == want.shape, key
        # NaN where there was NaN (no accelerometer, a single channel's co-activation), equal elsewhere.
        np.testing.assert_allclose(value, want, rtol=RTOL, atol=0.0, equal_nan=True, err_msg=key)


def test_features_do_not_depend_on_the_chunk_size() -> None:
    """Live frames and offline chunks of any size give the same bits (the gap night: short, all paths)."""
    a, b = computed("gap", chunk_s=30.0), computed("gap", chunk_s=7.3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


if __name__ == "__main__":
    arrays = {k: v for name in NIGHTS for k, v in computed(name).items()}
    np.savez_compressed(PINNED, **arrays)  # type: ignore[arg-type]
    print(f"{PINNED}: {PINNED.stat().st_size} bytes, " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))
    sys.exit(0)
