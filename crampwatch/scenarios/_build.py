"""A named scenario and the function that turns it into a :class:`~crampwatch.recording.Recording`."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

from ..frames import StreamKind
from ..recording import Annotation, Recording, Signal
from ._background import find_real_data, real_sources, tile_background
from ._parts import EVENT_TYPES, Canvas, Part
from ._signals import ACC_NOISE_G, mains, posture_track

FloatArray = npt.NDArray[np.float64]

EMG_NAMES: Final = ("calf", "tibialis")
ACC_NAMES: Final = ("x", "y", "z")
ACC_RATE_HZ: Final = 50.0  # 3-axis, g, 50 Hz (issue 14 brief)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One named situation: a one-line description, its parts, and the recording set-up.

    ``gain`` scales every muscle signal and the real background (x0.5-x3); ``emg_rate_hz`` is 500-2000 Hz;
    mains hum is added at ``mains_hz`` with ``mains_uv`` amplitude (1-100 µV, physiology.md §1).
    """

    name: str
    description: str
    duration_s: float
    parts: tuple[Part, ...]
    emg_rate_hz: float = 1000.0
    gain: float = 1.0
    mains_hz: float = 50.0
    mains_uv: float = 3.0


def band_floor(x: FloatArray, rate_hz: float) -> float:
    """Median 250 ms RMS of ``x`` after a 20-450 Hz band-pass (upper edge <= 0.45 rate): physiology.md's floor."""
    hi = min(450.0, 0.45 * rate_hz)
    sos = signal.butter(4, [20.0, hi], btype="band", fs=rate_hz, output="sos")
    y = signal.sosfiltfilt(sos, x)
    w = max(1, round(0.25 * rate_hz))
    n = len(y) // w
    return float(np.median(np.sqrt(np.mean(y[: n * w].reshape(n, w) ** 2, axis=1))))


def build(scenario: Scenario, seed: int = 0, *, real_data: Path | None = None) -> Recording:
    """Draw ``scenario`` on real background; the same ``seed`` gives the same samples and truth.

    Raises :class:`~crampwatch.scenarios.RealDataMissingError` when the real recordings are not found.
    """
    rng = np.random.default_rng([seed, zlib.crc32(scenario.name.encode())])
    sources = real_sources(real_data if real_data is not None else find_real_data())
    picks = rng.choice(len(sources), size=2, replace=len(sources) < 2)
    background = np.stack(
        [
            scenario.gain * tile_background(sources[int(k)], scenario.duration_s, scenario.emg_rate_hz, rng)
            for k in picks
        ],
        axis=1,
    )
    n = len(background)
    hum = mains(np.arange(n) / scenario.emg_rate_hz, scenario.mains_hz, scenario.mains_uv, rng)
    quiet = background + hum[:, None]  # the recording as it would be with nothing happening
    # "x floor" amplitudes (off-site cramp) refer to this floor: what one measures on the recording
    floors = (band_floor(quiet[:, 0], scenario.emg_rate_hz), band_floor(quiet[:, 1], scenario.emg_rate_hz))
    canvas = Canvas(scenario.duration_s, scenario.emg_rate_hz, ACC_RATE_HZ, scenario.gain, floors, rng)
    for part in scenario.parts:
        part.draw(canvas)
    m = min(n, len(canvas.emg))
    emg = quiet[:m] + canvas.emg[:m]
    t_acc = np.arange(len(canvas.acc_motion)) / ACC_RATE_HZ
    acc = posture_track(t_acc, canvas.postures) + canvas.acc_motion
    acc = acc + ACC_NOISE_G * rng.standard_normal(acc.shape)
    truth = tuple(sorted(canvas.annotations, key=lambda a: (a.onset_s, a.type)))
    return Recording(
        emg=Signal(StreamKind.EMG, scenario.emg_rate_hz, EMG_NAMES, np.ascontiguousarray(emg)),
        acc=Signal(StreamKind.ACC, ACC_RATE_HZ, ACC_NAMES, np.ascontiguousarray(acc)),
        annotations=truth,
        source=f"scenario:{scenario.name}(seed={seed})",
        meta={
            "scenario": scenario.name,
            "description": scenario.description,
            "seed": seed,
            "gain": scenario.gain,
            "background": tuple(sources[int(k)].name for k in picks),
            "floor_uv": floors,
        },
    )


def expected_events(rec: Recording) -> tuple[Annotation, ...]:
    """The truth a detector is scored on: the ``cramp``, ``spasm`` and ``plm`` annotations."""
    return tuple(a for a in rec.annotations if a.type in EVENT_TYPES)
