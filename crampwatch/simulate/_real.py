"""Real leg sEMG for training nights: resting stretches as the floor, active stretches as voluntary movement.

Synthetic white + 1/f noise is not what a real electrode records at rest, and MU-pool voluntary bursts are
not real voluntary EMG; a detector trained only on them met real rest and real voluntary EMG as strangers.
So a share of training nights (``SimParams.real_floor``) take their floor from real resting sEMG, and
real active stretches are spliced in as voluntary movements (``SimParams.real_voluntary_per_h``).

Only the UCI "EMG Dataset in Lower Limb" *normal* subjects (``uci-lower-limb-emg/N_TXT``, 1 kHz, 4 thigh
channels, CC BY 4.0) are used. The abnormal subjects (``A_TXT``) and the BioSPPy examples stay unseen: they
are the real no-cramp files a trained model is checked on (``--check``). The files are read in place at run
time from ``$CRAMP_REAL_DATA`` or ``shared/data/real`` above the repository, never copied; without them a
night falls back to the synthetic floor and plants no real voluntary stretch (so a night depends on its
seed *and* on whether the folder is there; a training card records the files' hashes).

This reader is the simulator's own (its rules differ from :mod:`crampwatch.scenarios`, which stays
independent code): 10 Hz high-pass; 200 ms windows of 20-450 Hz RMS; *quiet* = at most twice the channel's
5th percentile and at most 8 µV, in runs of at least 1 s (one window trimmed off each end); *active* = above
max(4x the channel's quiet level, 15 µV), runs of at least 0.6 s merged across gaps under 1 s, cut with
0.3 s either side.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sps

from ._synth import F64

log = logging.getLogger(__name__)

ENV_VAR = "CRAMP_REAL_DATA"
RATE_HZ = 1000.0
TRAIN_GLOB = "uci-lower-limb-emg/N_TXT/*.txt"
_WIN = 200
_FADE = 20  # 20 ms cross-fades between tiled quiet snippets


@dataclass(frozen=True, eq=False)
class RealPool:
    """Quiet snippets per electrode and active multi-channel stretches, all µV at 1 kHz."""

    files: tuple[str, ...]
    sha256: tuple[str, ...]
    quiet: tuple[tuple[F64, ...], ...]  # per electrode
    floors_uv: tuple[float, ...]  # per electrode: median 20-450 Hz RMS of its quiet windows
    active: tuple[F64, ...]  # (n, 2): two channels of one file over one active stretch


def find_real_root() -> Path | None:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env) if Path(env).is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "real"
        if candidate.is_dir():
            return candidate
    return None


def _runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b - a >= min_len]


@functools.cache
def real_pool(root: Path | None = None) -> RealPool | None:
    """The pool read from ``root`` (default: :func:`find_real_root`); None when there are no files."""
    from ..errors import RecordingError
    from ..formats import read_recording

    root = root if root is not None else find_real_root()
    if root is None:
        return None
    files = sorted(root.glob(TRAIN_GLOB))
    hp = sps.butter(4, 10.0, btype="high", fs=RATE_HZ, output="sos")
    bp = sps.butter(4, [20.0, 450.0], btype="band", fs=RATE_HZ, output="sos")
    quiet: list[tuple[F64, ...]] = []
    floors: list[float] = []
    active: list[F64] = []
    used: list[str] = []
    hashes: list[str] = []
    for path in files:
        try:
            rec = read_recording(path)
        except RecordingError:
            continue
        if rec.emg.rate_hz != RATE_HZ or rec.emg.data.shape[1] < 2:
            continue
        used.append(str(path))
        hashes.append(hashlib.sha256(path.read_bytes()).hexdigest())
        raw = sps.sosfiltfilt(hp, rec.emg.data, axis=0)
        band = sps.sosfiltfilt(bp, rec.emg.data, axis=0)
        n = band.shape[0] // _WIN
        rms = np.sqrt(np.mean(band[: n * _WIN].reshape(n, _WIN, -1) ** 2, axis=1))  # (n, channels)
        busy = np.zeros(n, bool)
        quiet_level = []
        for c in range(raw.shape[1]):
            r = rms[:, c]
            q = (r <= 2.0 * np.percentile(r, 5)) & (r <= 8.0)
            runs = [(a + 1, b - 1) for a, b in _runs(q, 5)]
            snippets = tuple(np.ascontiguousarray(raw[a * _WIN : b * _WIN, c]) for a, b in runs)
            level = float(np.median(r[q])) if q.any() else float(np.percentile(r, 5))
            quiet_level.append(level)
            if sum(len(x) for x in snippets) >= 3 * RATE_HZ:
                quiet.append(snippets)
                floors.append(level)
            busy |= r > max(4.0 * level, 15.0)
        # active stretches: merge gaps under 1 s, keep runs of >= 0.6 s, two channels (most active pair)
        gaps = _runs(~busy, 1)
        for a, b in gaps:
            if b - a < 5 and a > 0 and b < n:
                busy[a:b] = True
        for a, b in _runs(busy, 3):
            s0, s1 = max(0, a * _WIN - 300), min(raw.shape[0], b * _WIN + 300)
            order = np.argsort(-rms[a:b].mean(axis=0))
            active.append(np.ascontiguousarray(raw[s0:s1][:, sorted(order[:2].tolist())]))
    if not quiet and not active:
        return None
    return RealPool(tuple(used), tuple(hashes), tuple(quiet), tuple(floors), tuple(active))


def to_rate(x: F64, rate_hz: float) -> F64:
    """``x`` (1 kHz, along axis 0) at ``rate_hz``: polyphase resampling by a small ratio (fast), then
    linear interpolation for the rest (2048 Hz = x2, then 2000 -> 2048, a band-limited signal)."""
    if rate_hz == RATE_HZ:
        return x
    frac = Fraction(rate_hz / RATE_HZ).limit_denominator(10)
    y = np.asarray(sps.resample_poly(x, frac.numerator, frac.denominator, axis=0), dtype=np.float64)
    near = RATE_HZ * frac.numerator / frac.denominator
    if abs(near - rate_hz) < 1e-9:
        return y
    n = int(np.floor((y.shape[0] - 1) / near * rate_hz)) + 1
    at = np.arange(n) * (near / rate_hz)
    if y.ndim == 1:
        return np.asarray(np.interp(at, np.arange(y.shape[0]), y), dtype=np.float64)
    return np.column_stack([np.interp(at, np.arange(y.shape[0]), y[:, c]) for c in range(y.shape[1])])


def quiet_tile(pool: RealPool, electrode: int, n_out: int, rate_hz: float, rng: np.random.Generator) -> F64:
    """``n_out`` samples at ``rate_hz`` of one electrode's quiet snippets, tiled in random order, sign and
    direction with 20 ms sqrt-cosine cross-fades (noise keeps its level through a joint), unit floor."""
    snippets = pool.quiet[electrode]
    need = int(np.ceil(n_out / rate_hz * RATE_HZ)) + 64
    ramp = np.sqrt(0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, _FADE)))
    out = np.zeros(need + 2 * _FADE + max(len(x) for x in snippets))
    at = 0
    while at < need:
        x = snippets[int(rng.integers(len(snippets)))]
        x = (x[::-1] if rng.random() < 0.5 else x) * (1.0 if rng.random() < 0.5 else -1.0)
        y = x.copy()
        if len(y) > 2 * _FADE:
            y[:_FADE] *= ramp
            y[-_FADE:] *= ramp[::-1]
        out[at : at + len(y)] += y
        at += max(len(y) - _FADE, 1)
    y = to_rate(out[:need], rate_hz)[:n_out]
    return np.asarray(y / pool.floors_uv[electrode], dtype=np.float64)
