"""Physical limits every frame must meet before any stream state sees it: the one edge check.

Why: :func:`crampwatch.wire.decode` proves a frame is well formed, not that it is a signal a leg sensor
could have produced. A 10 Hz "EMG" frame, a scale of 1e300 or a claimed 1 MHz rate passed the decoder and
then broke scipy's filter design, overflowed float conversions or made gap filling allocate gigabytes, and
one such frame stopped the live detector. :func:`check_frame` refuses those with a
:class:`~crampwatch.errors.FrameError` naming the limit, so the caller can dead-letter the frame with the
reason and go on.

Where the bounds come from (shared/reference physiology.md §7 and devices.md):

* EMG rate 100-10,000 Hz. Leg EMG in polysomnography is sampled at 200 Hz (the AASM minimum), wearables
  (Myo, OpenBCI Ganglion) at 200 Hz, lab and clinical systems at 1-2 kHz and more. Below 100 Hz the
  20-95 Hz band every EMG feature uses no longer fits under the Nyquist limit (the band-pass cannot even
  be designed below about 42 Hz); 10 kHz is five times the clinical 2 kHz, so no real sensor is refused,
  and it bounds what a claimed rate can make the detector allocate.
* ACC rate 1-2,000 Hz. Commodity accelerometers run at 25-416 Hz (Polar), the fastest listed IMU at
  1,666 Hz (Movesense); some bands report about 10 Hz, so 1 Hz is the slowest that still shows a turn.
* EMG 1-16 channels (the widest listed device, Myo and gForce, has 8: 16 allows one per leg), ACC exactly
  3 (x, y, z; :mod:`crampwatch.continuity` needs them).
* At most :data:`MAX_FRAME_S` (120 s) of samples per frame, offline files being cut into 90 s chunks.
  Frames from the network (collectors send 0.25 s by default, ``replay --frame-s``
  longer ones) may carry :data:`MAX_LIVE_FRAME_S` (60 s) and at most :data:`MAX_LIVE_FRAME_VALUES`
  samples x channels: processing a frame costs about 30x its size, so a larger live frame only serves to
  make one message cost a lot of memory.
* Scales finite and > 0; samples, once in µV or g, within ±10 V (EMG electrodes saturate at millivolts)
  and ±1,000 g (sensors go to ±16 g, high-g ones to ±200 g). Beyond that a value is not a measurement, and
  later arithmetic on it overflows.
* Device time from 0 (a device counts from its boot or from the Unix epoch, never before) up to the year
  2200, so that every sample time and every event time still fits an InfluxDB nanosecond timestamp.
* Sequence numbers below 2**63, so they fit every signed 64-bit counter downstream.

Jumps between frames (sequence and device time) need the stream's state; they start a new epoch rather
than reject the frame, see :mod:`crampwatch.continuity`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from .errors import FrameError, StreamError
from .frames import Frame, StreamKind
from .units import UnitError, factors

#: Sample rates (Hz) a real sensor of each kind streams at; see the module docstring for the sources.
RATE_LIMITS_HZ: Final[dict[StreamKind, tuple[float, float]]] = {
    StreamKind.EMG: (100.0, 10_000.0),
    StreamKind.ACC: (1.0, 2_000.0),
}
#: Channel counts per kind (inclusive).
CHANNEL_LIMITS: Final[dict[StreamKind, tuple[int, int]]] = {
    StreamKind.EMG: (1, 16),
    StreamKind.ACC: (3, 3),
}
#: Longest frame, in seconds of samples (offline chunks).
MAX_FRAME_S: Final = 120.0
#: Longest frame from the network (the detector service), in seconds of samples.
MAX_LIVE_FRAME_S: Final = 60.0
#: Most samples x channels in a frame from the network: 16 MB as float64, a minute of 8 channels at 4 kHz
#: (a 0.25 s frame of 8 channels at 1 kHz holds 2,000).
MAX_LIVE_FRAME_VALUES: Final = 2_000_000
#: Largest magnitude of a sample in the kind's canonical unit (µV for EMG, g for ACC).
VALUE_LIMITS: Final[dict[StreamKind, float]] = {
    StreamKind.EMG: 1e7,  # 10 V in µV
    StreamKind.ACC: 1e3,  # g
}
#: Latest device time accepted: 2200-01-01T00:00:00Z in ns (int64 ns ends in 2262).
MAX_DEVICE_TIME_NS: Final = 7_258_118_400 * 10**9
#: Sequence numbers must fit a signed 64-bit integer.
MAX_SEQ: Final = 2**63 - 1


def check_frame(frame: Frame, *, max_frame_s: float = MAX_FRAME_S, max_values: int | None = None) -> None:
    """Raise :class:`FrameError` naming the first physical limit ``frame`` breaks; return if it meets all.

    A unit that is not one of the kind's is a :class:`StreamError`, as everywhere else.
    """
    kind = frame.kind
    name = kind.value.upper()
    low, high = RATE_LIMITS_HZ[kind]
    if not low <= frame.rate_hz <= high:
        raise FrameError(f"{name} rate {frame.rate_hz:g} Hz is outside the physical range {low:g}-{high:g} Hz")
    n_low, n_high = CHANNEL_LIMITS[kind]
    n_ch = len(frame.channels)
    if not n_low <= n_ch <= n_high:
        allowed = f"{n_low}" if n_low == n_high else f"{n_low}-{n_high}"
        raise FrameError(f"{name} frame has {n_ch} channels; a {name} stream has {allowed}")
    if frame.n_samples > max_frame_s * frame.rate_hz:
        raise FrameError(
            f"{name} frame holds {frame.n_samples} samples, more than {max_frame_s:g} s at {frame.rate_hz:g} Hz"
        )
    if max_values is not None and frame.n_samples * n_ch > max_values:
        raise FrameError(
            f"{name} frame holds {frame.n_samples} samples x {n_ch} channels, more than the {max_values} allowed"
        )
    for ch in frame.channels:
        if not (math.isfinite(ch.scale) and ch.scale > 0 and math.isfinite(ch.offset)):
            raise FrameError(f"channel {ch.name!r} has scale {ch.scale!r} and offset {ch.offset!r}; need scale > 0")
    if not 0 <= frame.seq <= MAX_SEQ:
        raise FrameError(f"sequence number {frame.seq} is outside 0..2**63-1")
    if not 0 <= frame.t0_ns <= MAX_DEVICE_TIME_NS - frame.duration_ns:
        raise FrameError(f"device time {frame.t0_ns} ns is outside 0 .. year 2200")
    try:
        unit_factors = factors(kind, (c.unit for c in frame.channels))
    except UnitError as err:  # a stream problem, as crampwatch.continuity reports it for a stream's first frame
        raise StreamError(str(err)) from None
    if frame.n_samples:
        # The largest |value| per channel, from the extreme counts, without converting every sample.
        # Column by column: numpy reduces axis 0 of a (samples, channels) array some 40x slower.
        # The ufuncs' reductions, not ndarray.min/max: the same values without their Python wrappers.
        lowest = np.array([np.minimum.reduce(frame.data[:, j]) for j in range(n_ch)], dtype=np.float64)
        highest = np.array([np.maximum.reduce(frame.data[:, j]) for j in range(n_ch)], dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is what this check is looking for
            scales = np.array([c.scale for c in frame.channels]) * unit_factors
            offsets = np.array([c.offset for c in frame.channels]) * unit_factors
            peak = np.maximum(np.abs(lowest * scales + offsets), np.abs(highest * scales + offsets))
        limit = VALUE_LIMITS[kind]
        if not np.all(peak <= limit):  # also false for inf/NaN
            unit = "uV" if kind is StreamKind.EMG else "g"
            raise FrameError(f"{name} samples reach {float(np.max(peak)):.3g} {unit}, beyond the physical ±{limit:g}")
