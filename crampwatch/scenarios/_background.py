"""Real resting sEMG, cut from third-party recordings, as the background of every scenario.

The background is not synthesised: it is quiet stretches of real surface EMG (the UCI "EMG Dataset in
Lower Limb", DOI 10.24432/C5ZW3P, CC BY 4.0, sitting leg-extension task; BioSPPy ``examples/emg.txt`` and
``emg_1.txt``, BSD-3), read in place with :func:`crampwatch.formats.read_recording` and never copied. Its
amplifier noise, mains leakage, 1/f drift and quantisation are whatever those devices had.

A *source* is one channel of one file (one real electrode). Its quiet stretches are the 250 ms windows
whose 20-450 Hz RMS (the measure physiology.md §9 uses) is at most 1.5x the channel's 10th percentile and
at most 6 µV (rest is 1-5 µV, physiology.md §1), in runs of at least 1.5 s, one window trimmed off each
end. A scenario channel takes one source and tiles its quiet stretches (random order, sign and time
direction, 25 ms cross-fades) to the length it needs, so its floor is one electrode's, as on a real night.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

from ..errors import RecordingError
from ..formats import read_recording

__all__ = ["ENV_VAR", "RealDataMissingError", "Source", "find_real_data", "real_sources", "tile_background"]

FloatArray = npt.NDArray[np.float64]

#: Environment variable naming the ``shared/data/real`` folder.
ENV_VAR: Final = "CRAMP_REAL_DATA"

_RATE_HZ: Final = 1000.0  # both datasets are 1 kHz (README of shared/data/real)
_WIN: Final = 250  # 250 ms RMS windows at 1 kHz (physiology.md §9 "(UCI)" convention)
_QUIET_MAX_UV: Final = 6.0  # rest is 1-5 µV (physiology.md §1); a little margin for noisy electrodes
_QUIET_OVER_P10: Final = 1.5
_MIN_RUN_WINDOWS: Final = 6  # 1.5 s; one window is trimmed off each end -> >= 1 s kept
_MIN_SOURCE_S: Final = 8.0  # an electrode with less quiet than this would repeat too visibly
_FADE_S: Final = 0.025


class RealDataMissingError(FileNotFoundError):
    """The real recordings folder (``shared/data/real``) is not on this machine."""


def find_real_data() -> Path:
    """``$CRAMP_REAL_DATA``, else the first ``shared/data/real`` beside the repository or above it.

    The project layout puts it at ``../shared/data/real`` from the repository root; a git worktree sits
    one level deeper, so the parents of the root are searched too.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env)
        if not path.is_dir():
            raise RealDataMissingError(f"${ENV_VAR}={env} is not a folder")
        return path
    root = Path(__file__).resolve().parents[2]
    for parent in root.parents:
        candidate = parent / "shared" / "data" / "real"
        if candidate.is_dir():
            return candidate
    raise RealDataMissingError(
        f"no shared/data/real above {root}; set ${ENV_VAR} to the folder holding uci-lower-limb-emg/ and biosppy/"
    )


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """The quiet stretches of one real electrode, in µV at 1 kHz, 10 Hz high-passed (no DC steps)."""

    name: str
    snippets: tuple[FloatArray, ...]
    floor_uv: float  # median 20-450 Hz RMS of the quiet windows

    @property
    def quiet_s(self) -> float:
        return sum(len(s) for s in self.snippets) / _RATE_HZ


def _files(root: Path) -> list[Path]:
    # The sitting leg-extension task ("sen") has rest between repetitions; walking and standing flexion
    # have almost none (measured: < 8 s quiet per channel), so they are not read.
    uci = sorted((root / "uci-lower-limb-emg").glob("*_TXT/*sen.txt"))
    bio = [root / "biosppy" / name for name in ("emg.txt", "emg_1.txt")]
    return [p for p in [*uci, *bio] if p.is_file()]


def _quiet_runs(bandpassed: FloatArray) -> tuple[list[tuple[int, int]], float]:
    """Sample ranges of the quiet runs of one channel, and the median RMS of their windows (µV)."""
    n = len(bandpassed) // _WIN
    rms = np.sqrt(np.mean(bandpassed[: n * _WIN].reshape(n, _WIN) ** 2, axis=1))
    quiet = (rms <= _QUIET_OVER_P10 * np.percentile(rms, 10)) & (rms <= _QUIET_MAX_UV)
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = stops - starts >= _MIN_RUN_WINDOWS
    floor = float(np.median(rms[quiet])) if quiet.any() else float("nan")
    return [((s + 1) * _WIN, (e - 1) * _WIN) for s, e in zip(starts[keep], stops[keep], strict=True)], floor


@functools.cache
def real_sources(root: Path) -> tuple[Source, ...]:
    """Every electrode in ``root`` with at least 8 s of quiet, in a fixed order (sorted file names)."""
    files = _files(root)
    if not files:
        raise RealDataMissingError(f"{root} holds no UCI *sen.txt or BioSPPy emg*.txt files")
    highpass = signal.butter(4, 10.0, btype="high", fs=_RATE_HZ, output="sos")
    band = signal.butter(4, [20.0, 450.0], btype="band", fs=_RATE_HZ, output="sos")
    out = []
    # BioSPPy files log a note about the assumed transfer function; it is documented above.
    quiet = logging.getLogger("crampwatch.formats.biosppy")
    was = quiet.disabled
    quiet.disabled = True
    try:
        for path in files:
            try:
                rec = read_recording(path)
            except RecordingError:
                continue
            if rec.emg.rate_hz != _RATE_HZ:
                continue
            raw = signal.sosfiltfilt(highpass, rec.emg.data, axis=0)
            bp = signal.sosfiltfilt(band, rec.emg.data, axis=0)
            for c, label in enumerate(rec.emg.channel_names):
                runs, floor = _quiet_runs(bp[:, c])
                snippets = tuple(np.ascontiguousarray(raw[a:b, c]) for a, b in runs)
                if sum(len(s) for s in snippets) < _MIN_SOURCE_S * _RATE_HZ:
                    continue
                out.append(Source(f"{path.parent.name}/{path.name}:{label}", snippets, floor))
    finally:
        quiet.disabled = was
    if not out:
        raise RealDataMissingError(f"{root}: no electrode has {_MIN_SOURCE_S:.0f} s of quiet EMG")
    return tuple(out)


def tile_background(source: Source, duration_s: float, rate_hz: float, rng: np.random.Generator) -> FloatArray:
    """``duration_s`` of ``source``'s quiet EMG at ``rate_hz`` (µV), tiled as the module docstring says."""
    need = int(np.ceil(duration_s * _RATE_HZ)) + 1
    fade = int(_FADE_S * _RATE_HZ)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    pieces: list[FloatArray] = []
    have = 0
    while have < need:  # one iteration per snippet (seconds long), not per sample
        snip = source.snippets[int(rng.integers(len(source.snippets)))]
        snip = snip[::-1] if rng.random() < 0.5 else snip
        pieces.append(-snip if rng.random() < 0.5 else snip)
        have += len(snip) - fade
    # Overlap-add with sqrt-cosine fades: uncorrelated noise keeps its level through each joint.
    out = np.zeros(have + fade)
    at = 0
    for k, snip in enumerate(pieces):
        shaped = snip.copy()
        if k > 0:
            shaped[:fade] *= np.sqrt(ramp)
        if k < len(pieces) - 1:
            shaped[-fade:] *= np.sqrt(ramp[::-1])
        out[at : at + len(shaped)] += shaped
        at += len(shaped) - fade
    out = out[:need]
    if rate_hz != _RATE_HZ:
        up, down = _ratio(rate_hz)
        out = signal.resample_poly(out, up, down)
    return np.asarray(out[: round(duration_s * rate_hz)], dtype=np.float64)


def _ratio(rate_hz: float) -> tuple[int, int]:
    """Up/down factors of the polyphase resampler from 1 kHz to ``rate_hz`` (e.g. 2000 -> 2/1)."""
    frac = Fraction(rate_hz / _RATE_HZ).limit_denominator(100)
    return frac.numerator, frac.denominator
