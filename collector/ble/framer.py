"""From decoded sample blocks to numbered, timed wire frames, one :class:`Framer` per stream.

Why a separate step: a BLE notification carries 2-20 samples, far too few for one MQTT message each, and
the frame sequence number must continue across reconnects *and* collector restarts (the detector drops
any frame whose seq it has already passed). The framer times each block and hands it to the shared
:class:`~crampwatch.framing.FrameCutter`, which batches blocks into frames of ``frame_s`` seconds and
numbers them from a start value the spool remembers.

How gaps reach the detector: the detector fills missing data when a frame's seq skips ahead, and sizes
the fill from the frames' times. So whenever samples are known to be missing (a device-side sequence
gap, or a reconnect) the framer ends the frame in progress, **skips one sequence number**, and starts
the next frame at the right time (for a device-side gap, exactly ``lost`` samples later; after a
reconnect, at the host time the data resumed).

Times: nanoseconds on the host's clock (Unix epoch), so that streams of different devices line up. A
device without a clock (Ganglion, Myo, BITalino) is timed by counting samples at the nominal rate from
an anchor taken at the first notification of each connection (host receive time minus the block's
duration). A device with a clock (Polar, CrampWatch sensor) is timed by its own timestamps, shifted
to the host epoch by an offset fixed at its first block (device clocks drift slowly against the host;
over a night that is a few seconds at most and keeps the device's sample spacing exact).
"""

from __future__ import annotations

import logging

from crampwatch.frames import Frame
from crampwatch.framing import FrameCutter

from .profile import SampleBlock, StreamSpec

log = logging.getLogger(__name__)

#: A device timestamp this far (in sample periods) from the expected time starts a new segment.
TIME_JUMP_SAMPLES = 1.5


class Framer:
    """Times one stream's blocks and cuts them into frames of ``frame_s`` seconds (see the module docstring)."""

    def __init__(self, spec: StreamSpec, *, first_seq: int, frame_s: float = 0.25) -> None:
        self.spec = spec
        # A BLE frame leaves as soon as it is full (into the spool at once), not one notification later.
        self.cutter = FrameCutter(
            spec.kind,
            spec.rate_hz,
            spec.channels,
            frame_s=frame_s,
            first_seq=first_seq,
            dtype=spec.dtype,
            hold_last_sample=False,
        )
        self._next_t_ns: int | None = None  # time of the next sample expected
        self._device_offset_ns: int | None = None  # host epoch - device clock
        self._new_segment = True
        if first_seq > 0:
            # The stream already has frames from an earlier run: the collector was down, data is missing.
            self.cutter.mark_gap()

    @property
    def period_ns(self) -> float:
        return 1e9 / self.spec.rate_hz

    @property
    def next_seq(self) -> int:
        return self.cutter.next_seq

    def reconnected(self) -> list[Frame]:
        """The link dropped: emit what is pending; the next block starts a new segment after a seq gap."""
        frames = self.flush()
        self._new_segment = True
        if self.cutter.frames > 0:
            self.cutter.mark_gap()
        return frames

    def push(self, block: SampleBlock, host_ns: int) -> list[Frame]:
        """Add one decoded block received at ``host_ns``; returns the frames it completed."""
        n = int(block.data.shape[0])
        if n == 0:
            return []
        frames: list[Frame] = []
        t_first = self._first_sample_time(block, host_ns, n)
        if block.lost_before > 0 and not self._new_segment:
            frames += self.flush()
            self.cutter.mark_gap()
            assert self._next_t_ns is not None
            if block.t_device_ns is None:
                t_first = self._next_t_ns + round(block.lost_before * self.period_ns)
        elif self._new_segment:
            if self._next_t_ns is not None:
                t_first = max(t_first, self._next_t_ns)  # never let time run backwards
        elif block.t_device_ns is None:
            assert self._next_t_ns is not None
            t_first = self._next_t_ns  # no device clock: count samples at the nominal rate
        elif abs(t_first - (self._next_t_ns or t_first)) > TIME_JUMP_SAMPLES * self.period_ns:
            # The device clock says samples are missing although no counter did (or the clock jumped).
            frames += self.flush()
            self.cutter.mark_gap()
        self._new_segment = False
        self._next_t_ns = t_first + round(n * self.period_ns)
        return frames + self.cutter.push(block.data, time_ns=t_first)

    def flush(self, *, end_of_stream: bool = False) -> list[Frame]:
        """Emit the pending samples as a (short) frame."""
        return self.cutter.flush(end_of_stream=end_of_stream)

    def _first_sample_time(self, block: SampleBlock, host_ns: int, n: int) -> int:
        if block.t_device_ns is not None:
            if self._device_offset_ns is None:
                self._device_offset_ns = host_ns - round((n - 1) * self.period_ns) - block.t_device_ns
            return block.t_device_ns + self._device_offset_ns
        return host_ns - round(n * self.period_ns)
