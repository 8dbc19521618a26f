"""The typed message every source hands on: a block of samples from one stream of one device.

A :class:`Frame` is what travels from a source (BLE wearable, simulator, file replay) through the
publisher and the broker to the detector. Sample values are integer ADC counts (or float32 for sources
that are already physical) together with a per-channel scale, exactly as on the wire
(:mod:`crampwatch.wire`), so that nothing is re-quantised on the way.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import FrameError


class StreamKind(enum.StrEnum):
    """Which kind of signal a stream carries. Also the last topic level."""

    EMG = "emg"
    ACC = "acc"


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel of a stream: label, physical unit, and the count -> unit mapping.

    Physical value = count x ``scale`` + ``offset`` (the offset lets EDF-style digital ranges travel
    unchanged, so a replayed file decodes to exactly the values a file reader produces).
    """

    name: str
    unit: str
    scale: float = 1.0
    offset: float = 0.0


#: Frame flag: the source has no more samples for this stream (end of a recording or simulation).
FLAG_END_OF_STREAM = 0x01


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """A block of consecutive samples of one stream.

    Attributes:
        kind: EMG or ACC.
        seq: per-stream sequence number, +1 per frame, so gaps and duplicates are visible.
        t0_ns: device timestamp of the first sample, in nanoseconds of the device clock.
        rate_hz: nominal sample rate.
        channels: one :class:`Channel` per column of ``data``.
        data: ``(n_samples, n_channels)`` counts (int16/int32) or physical values (float32/64).
        flags: bit set of ``FLAG_*`` values.
    """

    kind: StreamKind
    seq: int
    t0_ns: int
    rate_hz: float
    channels: tuple[Channel, ...]
    data: npt.NDArray[np.int16] | npt.NDArray[np.int32] | npt.NDArray[np.float32] | npt.NDArray[np.float64]
    flags: int = 0

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.channels):
            raise FrameError(f"data shape {self.data.shape} does not match {len(self.channels)} channel(s)")
        if not (self.rate_hz > 0 and np.isfinite(self.rate_hz)):
            raise FrameError(f"sample rate must be a positive number, got {self.rate_hz!r}")
        if self.seq < 0:
            raise FrameError(f"sequence number must be >= 0, got {self.seq}")

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def end_of_stream(self) -> bool:
        return bool(self.flags & FLAG_END_OF_STREAM)

    def values(self) -> npt.NDArray[np.float64]:
        """Samples in each channel's own physical unit, ``(n_samples, n_channels)`` float64.

        This undoes the wire's count scaling only; the factors to µV and g are in :mod:`crampwatch.units`,
        applied per stream by :mod:`crampwatch.continuity`.
        """
        out = self.data.astype(np.float64)
        scale_by(out, [c.scale for c in self.channels])
        offsets = [float(c.offset) for c in self.channels]
        same = _same(offsets)
        out += offsets[0] if same else np.array(offsets, dtype=np.float64)
        return out

    @property
    def duration_ns(self) -> int:
        return round(self.n_samples * 1e9 / self.rate_hz)


def scale_by(values: npt.NDArray[np.float64], factors: Sequence[float] | npt.NDArray[np.float64]) -> None:
    """Multiply each column of ``(n_samples, n_channels)`` ``values`` by its factor, in place.

    When every channel has the same factor (the usual case) it is one scalar multiply: numpy broadcasts a
    per-channel row over a few columns about ten times slower, for the same products.
    """
    numbers = [float(f) for f in factors]
    values *= numbers[0] if _same(numbers) else np.array(numbers, dtype=np.float64)


def _same(numbers: list[float]) -> bool:
    """All the same float, bit for bit (0.0 and -0.0 differ: they can give results of different sign)."""
    return len({x.hex() for x in numbers}) == 1
