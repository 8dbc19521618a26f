"""Signal primitives of the scenario suite: envelopes, band-limited noise, mains, posture and ACC motion.

Deliberately a different construction from :mod:`crampwatch.simulate` (which sums motor-unit spike trains
convolved with MUAP templates): here every muscle signal is white noise shaped by a band-pass filter and
multiplied by an amplitude envelope in µV RMS. All functions are vectorised over time arrays.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

FloatArray = npt.NDArray[np.float64]

#: Shank-sensor axes as the rest of the project uses them: x along the shank towards the foot, y lateral,
#: z anterior. Supine reads ~(0, 0, 1), side ~(0, ±1, 0), standing ~(-1, 0, 0) (crampwatch.simulate docs).
SUPINE: Final = (0.0, 0.0, 1.0)
LEFT_SIDE: Final = (0.0, 1.0, 0.0)
RIGHT_SIDE: Final = (0.0, -1.0, 0.0)
PRONE: Final = (0.0, 0.0, -1.0)
STANDING: Final = (-1.0, 0.0, 0.0)

ACC_NOISE_G: Final = 0.0015  # |acc| noise 1-2 mg SD at rest (physiology.md §1, UCI)


def tilted(tilt_deg: float, base: tuple[float, float, float] = SUPINE) -> tuple[float, float, float]:
    """Gravity after the shank tilts ``tilt_deg`` from ``base`` towards standing (knee bent, sitting up)."""
    a = np.deg2rad(tilt_deg)
    b = np.asarray(base, dtype=np.float64)
    v = np.cos(a) * b + np.sin(a) * np.asarray(STANDING)
    v = v / np.linalg.norm(v)
    return (float(v[0]), float(v[1]), float(v[2]))


def smoothstep(t: FloatArray, start: float, width: float) -> FloatArray:
    """0 before ``start``, 1 after ``start + width``, raised cosine between (a step when width <= 0)."""
    if width <= 0:
        return (t >= start).astype(np.float64)
    x = np.clip((t - start) / width, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def plateau(t: FloatArray, start: float, stop: float, rise: float, fall: float) -> FloatArray:
    """1 on [start + rise, stop - fall], raised-cosine edges, 0 outside [start, stop]."""
    return smoothstep(t, start, rise) * (1.0 - smoothstep(t, stop - fall, fall))


def pulse_train(t: FloatArray, start: float, stop: float, rate_hz: float, width_s: float) -> FloatArray:
    """Hann-shaped pulses of ``width_s`` starting every 1/``rate_hz`` s from ``start``, none after ``stop``."""
    since = t - start
    phase = np.mod(since, 1.0 / rate_hz)
    inside = (since >= 0) & (t < stop) & (phase < width_s)
    out = np.zeros_like(t)
    out[inside] = np.sin(np.pi * phase[inside] / width_s) ** 2
    return out


def band_noise(n: int, rate_hz: float, median_hz: float, rng: np.random.Generator) -> FloatArray:
    """Unit-RMS noise band-limited around ``median_hz`` (about 0.45x to 2.2x it, inside 20 Hz..0.45 rate).

    A 4th-order Butterworth band-pass on white noise; its power median sits near the band's geometric
    centre, so ``median_hz`` sets the spectrum the way the physiology table quotes it (median frequency).
    """
    if n <= 0:
        return np.zeros(0)
    lo = max(20.0, 0.45 * median_hz)
    hi = min(2.2 * median_hz, 0.45 * rate_hz)
    lo = min(lo, 0.5 * hi)
    sos = signal.butter(4, [lo, hi], btype="band", fs=rate_hz, output="sos")
    pad = int(0.2 * rate_hz)  # let the filter settle
    x = signal.sosfilt(sos, rng.standard_normal(n + pad))[pad:]
    sd = float(np.std(x))
    return np.asarray(x / sd if sd > 0 else x, dtype=np.float64)


def lowpass_noise(n: int, rate_hz: float, cutoff_hz: float, rng: np.random.Generator) -> FloatArray:
    """Unit-RMS noise below ``cutoff_hz`` (electrode-motion artefact is < 20 Hz, physiology.md §1)."""
    if n <= 0:
        return np.zeros(0)
    sos = signal.butter(2, min(cutoff_hz, 0.45 * rate_hz), btype="low", fs=rate_hz, output="sos")
    pad = int(rate_hz)
    x = signal.sosfilt(sos, rng.standard_normal(n + pad))[pad:]
    sd = float(np.std(x))
    return np.asarray(x / sd if sd > 0 else x, dtype=np.float64)


def mains(t: FloatArray, hz: float, amp_uv: float, rng: np.random.Generator) -> FloatArray:
    """Mains hum: the fundamental plus a third harmonic at 30 % (physiology.md §1: 1-100 µV, 50/60 Hz)."""
    p1, p3 = rng.uniform(0, 2 * np.pi, 2)
    hum = np.sin(2 * np.pi * hz * t + p1) + 0.3 * np.sin(2 * np.pi * 3 * hz * t + p3)
    return np.asarray(amp_uv * hum, dtype=np.float64)


def posture_track(t: FloatArray, keys: list[tuple[float, float, tuple[float, float, float]]]) -> FloatArray:
    """Gravity (n, 3) in g from posture keyframes ``(start_s, transition_s, vector)``, sorted by start.

    Between keyframes the vector moves along a raised-cosine path and is renormalised, so ``|g| = 1``.
    """
    keys = sorted(keys, key=lambda k: k[0])
    out = np.tile(np.asarray(keys[0][2], dtype=np.float64), (len(t), 1))
    for start, width, vec in keys[1:]:
        w = smoothstep(t, start, width)[:, None]
        out = (1 - w) * out + w * np.asarray(vec, dtype=np.float64)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.where(norm > 0, norm, 1.0), dtype=np.float64)


def random_axis(rng: np.random.Generator) -> FloatArray:
    v = rng.standard_normal(3)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)
