"""Per-window sEMG features.

A *window* is the last ~1 s of band-limited (20-95 Hz) EMG ending at each 0.5 s hop; the *envelope* is the
RMS of 50 ms segments over the last ~4 s. Everything is a ratio or in Hz/seconds, so it does not depend on
the amplifier gain or the sample rate:

- amplitude: RMS relative to the recording's own resting baseline (log), for the most and least active
  channel (a cramp is localised; turning in bed and tonic spasms recruit several muscles);
- shape: waveform length, zero crossings and slope sign changes per second, kurtosis, crest factor;
- spectrum: mean and median frequency and band fractions inside 20-95 Hz;
- envelope: coefficient of variation, and the fraction of envelope power at 0.75-2.5 Hz (the 1-2 Hz
  waxing and waning of cramps) and at 4.5-7.5 Hz (clonus bursts at 4.7-7 Hz);
- onset and co-activation: the second most active channel's level, the steepest ~150 ms rise of the
  log envelope in the last second (spasms start abruptly, voluntary moves ramp), and the correlation of
  the two most active channels' log envelopes (one common drive; NaN with a single channel). These carry
  the spasm/limb-movement split on recordings without an accelerometer.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .filters import EMG_BAND_HZ

if TYPE_CHECKING:
    from ..windows import EmgWindows

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EPS_UV = 1e-3

_PER_CHANNEL = (
    "wl_rate",
    "zc_rate",
    "ssc_rate",
    "mean_freq",
    "median_freq",
    "frac_20_40",
    "frac_40_60",
    "frac_60_95",
    "log_kurtosis",
    "crest",
    "env_cv",
    "mod_slow",
    "mod_clonus",
)

EMG_NAMES: tuple[str, ...] = (
    "emg_rel_hi",
    "emg_rel_lo",
    "emg_rel_spread",
    *(f"emg_{name}" for name in _PER_CHANNEL),
    "emg_rel_2nd",
    "emg_env_rise",
    "emg_env_coact",
)

#: Envelope segments over which the onset rise is measured (3 x 50 ms), and how far back it is sought.
RISE_SEGMENTS = 3
RISE_SPAN_S = 1.0


def row_sums(a: FloatArray) -> FloatArray:
    """Sum of each row, in an order that does not depend on how many rows there are.

    numpy sums a non-contiguous row (a strided or boolean-masked view) in a different order when the
    array has one row than when it has many; a contiguous copy makes every batch size give the same bits.
    """
    out: FloatArray = np.ascontiguousarray(a).sum(axis=1)
    return out


def band_slice(freqs: FloatArray, lo: float, hi: float) -> slice:
    """Columns of an ascending ``freqs`` with ``lo <= f < hi`` (a slice keeps rows contiguous)."""
    return slice(int(np.searchsorted(freqs, lo, side="left")), int(np.searchsorted(freqs, hi, side="left")))


def _fractions(power: FloatArray, total: FloatArray, bands: tuple[slice, ...]) -> FloatArray:
    """Each band's share of ``total`` (the rows' power sums, passed in when they are known already)."""
    total = total + 1e-30
    return np.stack([row_sums(power[:, band]) / total for band in bands], axis=1)


# The frequency bins and band slices depend only on the window length and rate: found once, not per push
# (live frames complete one or two windows each, and these lookups were a tenth of the features' time).
@functools.cache
def _emg_plan(length: int, rate_hz: float) -> tuple[slice, FloatArray, tuple[slice, ...]]:
    freqs = np.fft.rfftfreq(length, 1.0 / rate_hz).astype(np.float64)
    top = min(EMG_BAND_HZ[1], 0.475 * rate_hz)
    band = band_slice(freqs, EMG_BAND_HZ[0], top + 1e-9)
    bf = freqs[band]
    bf.flags.writeable = False
    return band, bf, tuple(band_slice(bf, lo, hi) for lo, hi in ((20.0, 40.0), (40.0, 60.0), (60.0, 96.0)))


@functools.cache
def _env_plan(m: int, seg_s: float) -> tuple[slice, ...]:
    env_freqs = np.fft.rfftfreq(m, seg_s).astype(np.float64)[1:]
    return tuple(band_slice(env_freqs, lo, hi) for lo, hi in ((0.75, 2.5), (4.5, 7.5)))


def _count_changes(signs: BoolArray) -> FloatArray:
    """Per row, how often ``signs`` changes from one column to the next (an exact count)."""
    changes = signs[:, 1:] != signs[:, :-1]
    out: FloatArray = np.count_nonzero(changes, axis=1).astype(np.float64)
    return out


def _per_channel(
    win: FloatArray, env: FloatArray, rate_hz: float, seg_s: float, rms: FloatArray, peak: FloatArray
) -> FloatArray:
    """Shape, spectrum and envelope features of one channel: ``win (n, L)``, ``env (n, M)`` -> ``(n, k)``.

    ``rms`` and ``peak`` are the window RMS and largest |sample| (``(n,)``), which the windower has already.
    """
    length = win.shape[1]
    duration = length / rate_hz
    rms = rms + EPS_UV
    diff = np.diff(win, axis=1)
    wl_rate = np.add.reduce(np.abs(diff), axis=1) / (rms * duration)
    zc_rate = _count_changes(np.signbit(win)) / duration
    ssc_rate = _count_changes(np.signbit(diff)) / duration
    centred = win - win.mean(axis=1, keepdims=True)
    centred2 = np.square(centred, out=centred)
    m2 = np.mean(centred2, axis=1) + EPS_UV**2
    # x**4 as (x**2)**2: numpy's pow for a scalar 4 is ten times slower than a square, for the same value.
    log_kurtosis = np.log(np.mean(np.square(centred2, out=centred2), axis=1) / (m2 * m2) + 1e-9)
    crest = peak / rms

    spectrum = rfft_rows(win * _hanning(length))
    band, bf, frac_bands = _emg_plan(length, rate_hz)
    # Power only inside the band: nothing outside it is used.
    bp = np.abs(spectrum[:, band]) ** 2
    power_sum = row_sums(bp)
    total = power_sum + 1e-30
    mean_freq = row_sums(bp * bf) / total
    cumulative = np.cumsum(bp, axis=1)
    median_idx = np.argmax(cumulative >= 0.5 * total[:, None], axis=1)
    median_freq = bf[median_idx]
    fracs = _fractions(bp, power_sum, frac_bands)

    env_mean = env.mean(axis=1) + EPS_UV
    env_cv = env.std(axis=1) / env_mean
    m = env.shape[1]
    env_spec = np.abs(np.fft.rfft((env - env.mean(axis=1, keepdims=True)) * _hanning(m), axis=1)) ** 2
    env_power = env_spec[:, 1:]
    mods = _fractions(env_power, row_sums(env_power), _env_plan(m, seg_s))

    return np.column_stack(
        [wl_rate, zc_rate, ssc_rate, mean_freq, median_freq, fracs, log_kurtosis, crest, env_cv, mods]
    )


#: Rows per FFT call: numpy's FFT of 1,000-sample rows took 0.55 s for an 8-h night in blocks of 180 rows
#: (a 90 s push) and 0.22-0.3 s in blocks of 32-64; each row's result is the same bits either way.
FFT_ROWS = 48


def rfft_rows(x: FloatArray) -> npt.NDArray[np.complex128]:
    """``np.fft.rfft(x, axis=1)``, computed a few rows at a time (faster, the same values)."""
    if x.shape[0] <= FFT_ROWS:
        return np.fft.rfft(x, axis=1)
    out = np.empty((x.shape[0], x.shape[1] // 2 + 1), dtype=np.complex128)
    for start in range(0, x.shape[0], FFT_ROWS):
        out[start : start + FFT_ROWS] = np.fft.rfft(x[start : start + FFT_ROWS], axis=1)
    return out


@functools.cache
def _hanning(n: int) -> FloatArray:
    out: FloatArray = np.hanning(n)
    out.flags.writeable = False
    return out


def emg_window_features(w: EmgWindows, rate_hz: float, seg_s: float, baseline: FloatArray) -> FloatArray:
    """Features of each window of ``w``, ``(n_windows, len(EMG_NAMES))``.

    Args:
        w: the windows of one push: band-limited EMG in µV, their RMS and peaks per channel, the envelope.
        rate_hz: EMG sample rate.
        seg_s: exact duration of one envelope segment.
        baseline: ``(n_windows, n_channels)`` resting RMS of each channel at that time, in µV.
    """
    rel = np.log((w.rms + EPS_UV) / (baseline + EPS_UV))
    order = np.argsort(rel, axis=1)
    rows = np.arange(rel.shape[0])
    hi, lo = order[:, -1], order[:, 0]
    rel_hi, rel_lo = rel[rows, hi], rel[rows, lo]
    # Shape/spectrum features describe the most active channel of each window.
    env_hi = w.envelope(hi)
    shape = _per_channel(w.windows(hi), env_hi, rate_hz, seg_s, w.rms[rows, hi], w.peak[rows, hi])
    log_hi = np.log(env_hi + EPS_UV)
    rise = _onset_rise(log_hi, seg_s)
    # The partner channel: the second most active (with one channel, itself, and no co-activation).
    if rel.shape[1] > 1:
        second = order[:, -2]
        coact = _log_correlation(log_hi, np.log(w.envelope(second) + EPS_UV))
    else:
        second, coact = hi, np.full(rel.shape[0], np.nan)
    rel_2nd = rel[rows, second]
    return np.column_stack([rel_hi, rel_lo, rel_hi - rel_lo, shape, rel_2nd, rise, coact])


def _onset_rise(log_env: FloatArray, seg_s: float) -> FloatArray:
    """Steepest rise of a log envelope over ~150 ms within the last ~1 s (an abrupt involuntary onset)."""
    k = RISE_SEGMENTS
    span = min(log_env.shape[1] - k, max(1, round(RISE_SPAN_S / seg_s)))
    recent = log_env[:, -(span + k) :]
    out: FloatArray = np.max(recent[:, k:] - recent[:, :-k], axis=1)
    return out


def _log_correlation(log_a: FloatArray, log_b: FloatArray) -> FloatArray:
    """Correlation of two channels' log envelopes over ~4 s: co-activation under one common drive."""
    la = log_a - log_a.mean(axis=1, keepdims=True)
    lb = log_b - log_b.mean(axis=1, keepdims=True)
    den = np.sqrt(np.sum(la * la, axis=1) * np.sum(lb * lb, axis=1)) + 1e-12
    out: FloatArray = np.sum(la * lb, axis=1) / den
    return out
