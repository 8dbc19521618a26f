"""Per-window accelerometer features (input low-passed at 10 Hz, in g, over the last ~2 s).

- activity: SD of the acceleration magnitude (rest is ~1-2 mg; walking ~0.3 g);
- jerk: mean rate of change of the acceleration vector, g/s (limb jerks of flexor spasms, artifacts);
- periodicity: fraction of magnitude power at 0.3-3 Hz (rubbing, walking, turning) and 3.5-8 Hz (clonus);
- gravity direction (unit vector), used by the context features to measure posture change.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from .emg import _hanning, band_slice, row_sums

FloatArray = npt.NDArray[np.float64]

ACC_NAMES: tuple[str, ...] = ("acc_log_activity", "acc_log_jerk", "acc_frac_slow", "acc_frac_clonus")


def acc_window_features(win: FloatArray, rate_hz: float) -> tuple[FloatArray, FloatArray]:
    """``win (n_windows, n_samples, 3)`` in g -> (features ``(n, 4)``, gravity unit vectors ``(n, 3)``)."""
    mag = _norm3(win)
    activity = mag.std(axis=1)
    jerk = _norm3(np.diff(win, axis=1)).mean(axis=1) * rate_hz
    n = mag.shape[1]
    spec = np.abs(np.fft.rfft((mag - mag.mean(axis=1, keepdims=True)) * _hanning(n), axis=1)) ** 2
    slow_band, clonus_band = _acc_plan(n, rate_hz)
    total = row_sums(spec[:, 1:]) + 1e-30
    slow = row_sums(spec[:, slow_band]) / total
    clonus = row_sums(spec[:, clonus_band]) / total
    gravity = win.mean(axis=1)
    gravity = gravity / (np.linalg.norm(gravity, axis=1, keepdims=True) + 1e-9)
    features = np.column_stack([np.log10(activity + 1e-4), np.log10(jerk + 1e-3), slow, clonus])
    return features, gravity


@functools.cache
def _acc_plan(n: int, rate_hz: float) -> tuple[slice, slice]:
    """The 0.3-3 Hz and 3.5-8 Hz bins of an ``n``-sample window (once, not per live frame)."""
    freqs = np.fft.rfftfreq(n, 1.0 / rate_hz).astype(np.float64)
    return band_slice(freqs, 0.3, 3.0), band_slice(freqs, 3.5, 8.0)


def _norm3(v: FloatArray) -> FloatArray:
    """``np.linalg.norm(v, axis=2)`` for x, y, z in the last axis, with the same sums, several times faster.

    numpy reduces a last axis of three slowly; (x² + y²) + z² is the order it adds them in.
    """
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    out: FloatArray = np.sqrt((x * x + y * y) + z * z)
    return out
