"""Signal building blocks: MUAP templates, motor-unit spike trains, MU-pool sEMG, ACC shapes.

Motor-unit (MU) model (physiology.md §2): each MU fires a renewal train with gamma ISIs (CV ~0.45), rate
6-25 pps (mean 14.5 pps, Minetto et al. 2009) scaled by a common drive; MUs recruit in order of threshold
(Henneman: bigger MUs later), ~4 % doublets (ISI 3-10 ms). The drive carries the common 1.3-1.5 Hz
"waxing and waning" oscillation. Non-stationary rates use time rescaling: unit-rate gamma events are
mapped through the inverse of the integrated rate, which is fully vectorised.

MUAPs are mixtures of the first and second derivative of a Gaussian (bi/triphasic, 5-25 ms), built in
the frequency domain with an anti-alias response at 0.45 fs, so a 200 Hz device sees a band-limited,
not aliased, signal. Spike impulses of MUs sharing a template are summed, then convolved once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

F64 = npt.NDArray[np.float64]


def sample_index(t_s: float, fs: float) -> int:
    """First sample index at or after ``t_s`` (the one rule used everywhere: ``ceil(t * fs)``)."""
    return math.ceil(t_s * fs - 1e-9)


def muap(fs: float, sigma_s: float, mix: float) -> F64:
    """Band-limited MUAP, peak |amplitude| 1, centred; ``mix`` 1 = triphasic (G''), 0 = biphasic (G')."""
    half = max(2, math.ceil(5.0 * sigma_s * fs))
    length = 2 * half + 1
    nfft = 1 << max(6, (4 * length - 1).bit_length())
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    w = 2.0 * np.pi * f * sigma_s
    spec = (-(mix * w**2) + (1.0 - mix) * 1j * w) * np.exp(-(w**2) / 2.0)
    spec = spec / np.sqrt(1.0 + (f / (0.45 * fs)) ** 16) * np.exp(-2j * np.pi * f * half / fs)
    x = np.fft.irfft(spec, nfft)[:length]
    peak = float(np.max(np.abs(x)))
    return x / peak if peak > 0 else x


@dataclass(frozen=True)
class PoolSpec:
    """A pool of motor units of one muscle. Rates in pulses per second, template widths in seconds."""

    n_mu: int = 40
    rate_min: float = 6.0
    rate_max: float = 25.0
    isi_cv: float = 0.45
    doublet_prob: float = 0.04
    sigma_s: tuple[float, float] = (1.3e-3, 2.6e-3)
    max_threshold: float = 0.6
    #: Relative widening of templates from start to end (median-frequency drift down by ~this share).
    drift: float = 0.0
    n_templates: int = 10


def spike_trains(rng: np.random.Generator, drive: F64, dt: float, spec: PoolSpec) -> tuple[list[F64], F64]:
    """Spike times (s, relative to the drive grid start) of each MU, and each MU's threshold.

    ``drive`` is 0..1 (may exceed 1 briefly) on a grid of step ``dt``.
    """
    n = spec.n_mu
    thr = np.sort(rng.uniform(0.0, spec.max_threshold, n))
    thr[0] = 0.0
    rmin = np.clip(rng.normal(spec.rate_min, 0.8, n), 3.0, None)
    rmax = np.clip(rng.normal(spec.rate_max, 0.3 * spec.rate_max, n), rmin + 3.0, None)
    grid_t = np.arange(drive.size) * dt
    k = 1.0 / spec.isi_cv**2
    trains: list[F64] = []
    for i in range(n):
        act = (drive - thr[i]) / (1.0 - thr[i])
        rate = np.where(drive > thr[i], rmin[i] + (rmax[i] - rmin[i]) * np.clip(act, 0.0, None), 0.0)
        lam = np.concatenate(([0.0], np.cumsum(rate) * dt))
        total = float(lam[-1])
        if total < 1.0:
            trains.append(np.zeros(0))
            continue
        lam += np.arange(lam.size) * 1e-12
        isi = rng.gamma(k, 1.0 / k, int(total * 1.2 + 6 * math.sqrt(total) + 10))
        u = np.cumsum(isi) - rng.uniform(0.0, 1.0)
        u = u[(u > 0) & (u < total)]
        t = np.interp(u, lam, np.concatenate((grid_t, [grid_t[-1] + dt])))
        dbl = rng.random(t.size) < spec.doublet_prob
        if dbl.any():
            t = np.sort(np.concatenate((t, t[dbl] + rng.uniform(0.003, 0.010, int(dbl.sum())))))
        trains.append(t)
    return trains, thr


def pool_emg(
    rng: np.random.Generator,
    fs: float,
    n: int,
    trains: list[F64],
    thr: F64,
    spec: PoolSpec,
) -> F64:
    """Sum of MUAP trains, ``n`` samples at ``fs``; spike time 0 is sample 0. Unscaled."""
    n_t = max(1, min(spec.n_templates, len(trains)))
    sig = np.exp(rng.uniform(math.log(spec.sigma_s[0]), math.log(spec.sigma_s[1]), n_t))
    mix = rng.uniform(0.2, 1.0, n_t)
    sign = rng.choice([-1.0, 1.0], n_t)
    group = rng.integers(0, n_t, len(trains))
    amp = np.exp(rng.normal(0.0, 0.5, len(trains))) * (1.0 + 3.0 * thr)
    stages = 3 if spec.drift > 0 else 1
    out = np.zeros(n)
    impulses = np.zeros((n_t, stages, n + 1))
    for i, t in enumerate(trains):
        if t.size == 0:
            continue
        idx = np.round(t * fs).astype(np.int64)
        ok = (idx >= 0) & (idx < n)
        idx = idx[ok]
        if stages == 1:
            np.add.at(impulses[group[i], 0], idx, amp[i])
        else:
            q = idx / max(n - 1, 1) * (stages - 1)
            lo = np.minimum(np.floor(q).astype(np.int64), stages - 2)
            w = q - lo
            np.add.at(impulses[group[i]], (lo, idx), amp[i] * (1.0 - w))
            np.add.at(impulses[group[i]], (lo + 1, idx), amp[i] * w)
    for g in range(n_t):
        for s in range(stages):
            imp = impulses[g, s, :n]
            if not imp.any():
                continue
            widen = 1.0 + spec.drift * s / max(stages - 1, 1)
            tpl = sign[g] * muap(fs, float(sig[g]) * widen, float(mix[g]))
            half = tpl.size // 2
            conv = sps.oaconvolve(imp, tpl)
            out += conv[half : half + n]
    return out


def smooth_step(x: F64) -> F64:
    """0 for x <= 0, 1 for x >= 1, raised-cosine in between."""
    c = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * c)


def band_noise(rng: np.random.Generator, n: int, fs: float, lo: float, hi: float, ndim: int = 1) -> F64:
    """White noise band-passed to [lo, hi] Hz (zero-phase, inside the event only), unit RMS, (n, ndim)."""
    x = rng.standard_normal((n + 64, ndim))
    nyq = fs / 2.0
    hi_n = min(hi / nyq, 0.95)
    lo_n = max(lo / nyq, 1e-4)
    if hi_n <= lo_n:
        return np.zeros((n, ndim))
    sos = sps.butter(2, [lo_n, hi_n], btype="bandpass", output="sos")
    y = sps.sosfiltfilt(sos, x, axis=0, padlen=min(27, n + 63))[32 : 32 + n]
    rms = float(np.sqrt(np.mean(y**2))) if y.size else 0.0
    return np.asarray(y / rms if rms > 0 else y, dtype=np.float64)


def rotate(v: F64, axis: F64, angle: float) -> F64:
    """Rodrigues rotation of vector ``v`` about unit ``axis`` by ``angle`` radians."""
    a = axis / np.linalg.norm(axis)
    c, s = math.cos(angle), math.sin(angle)
    return np.asarray(v * c + np.cross(a, v) * s + a * np.dot(a, v) * (1.0 - c), dtype=np.float64)


def slerp(a: F64, b: F64, w: F64) -> F64:
    """Spherical interpolation between unit vectors a and b at weights ``w`` (k,) -> (k, 3)."""
    dot = float(np.clip(np.dot(a, b), -1.0, 1.0))
    om = math.acos(dot)
    if om < 1e-6:
        return np.outer(1.0 - w, a) + np.outer(w, b)
    if abs(om - math.pi) < 1e-3:  # antipodal: go through any perpendicular vector
        perp = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-3:
            perp = np.cross(a, [0.0, 1.0, 0.0])
        mid = perp / np.linalg.norm(perp)
        first = slerp(a, mid, np.clip(2 * w, 0, 1))
        second = slerp(mid, b, np.clip(2 * w - 1, 0, 1))
        return np.where((w < 0.5)[:, None], first, second)
    so = math.sin(om)
    return np.asarray(np.outer(np.sin((1.0 - w) * om) / so, a) + np.outer(np.sin(w * om) / so, b), dtype=np.float64)
