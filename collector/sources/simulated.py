"""The simulated wearable as a source: renders a :class:`~crampwatch.simulate.Night` in blocks."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator

import numpy as np

from crampwatch.frames import FLAG_END_OF_STREAM, Channel, Frame, StreamKind
from crampwatch.simulate import Night
from crampwatch.units import ACC_UNIT, EMG_UNIT

RENDER_BLOCK_S = 10.0
ACC_RESOLUTION_G = 1e-4  # the simulated accelerometer's LSB (16-bit at +-3.2 g)


class SimulatedSource:
    """Frames of a simulated night: EMG as int32 counts at the sensor's ADC resolution, ACC in 0.1 mg."""

    def __init__(self, night: Night, *, frame_s: float = 0.25, start_ns: int = 0) -> None:
        self.night = night
        self.frame_s = frame_s
        self.start_ns = start_ns

    def frames(self) -> Iterator[Frame]:
        p = self.night.params
        emg_names = ("calf", "tibialis", "ch3", "ch4", "ch5", "ch6", "ch7", "ch8")[: p.n_emg_channels]
        emg_channels = tuple(Channel(n, EMG_UNIT, p.adc_resolution_uv) for n in emg_names)
        acc_channels = tuple(Channel(n, ACC_UNIT, ACC_RESOLUTION_G) for n in "xyz")
        emg = _StreamCutter(StreamKind.EMG, p.emg_rate_hz, emg_channels, self.frame_s, self.start_ns)
        acc = _StreamCutter(StreamKind.ACC, p.acc_rate_hz, acc_channels, self.frame_s, self.start_ns)
        duration = self.night.duration_s

        def blocks() -> Iterator[tuple[int, int, Frame]]:
            n_blocks = math.ceil(duration / RENDER_BLOCK_S)
            for b in range(n_blocks):
                start, stop = b * RENDER_BLOCK_S, min(duration, (b + 1) * RENDER_BLOCK_S)
                emg_uv, acc_g = self.night.render(start, stop)
                last = b == n_blocks - 1
                for f in emg.push(np.round(emg_uv / p.adc_resolution_uv).astype(np.int32), last):
                    yield (f.t0_ns + f.duration_ns, 0, f)
                for f in acc.push(np.round(acc_g / ACC_RESOLUTION_G).astype(np.int32), last):
                    yield (f.t0_ns + f.duration_ns, 1, f)

        # Within a block EMG and ACC frames are interleaved by end time, as a device would send them.
        pending: list[tuple[int, int, Frame]] = []
        for item in blocks():
            heapq.heappush(pending, item)
            while len(pending) > 256:
                yield heapq.heappop(pending)[2]
        while pending:
            yield heapq.heappop(pending)[2]


class _StreamCutter:
    """Cuts a stream's rendered blocks into fixed-size frames with sequence numbers and device times."""

    def __init__(
        self, kind: StreamKind, rate_hz: float, channels: tuple[Channel, ...], frame_s: float, start_ns: int
    ) -> None:
        self.kind = kind
        self.rate_hz = rate_hz
        self.channels = channels
        self.n_per = max(1, round(frame_s * rate_hz))
        self.start_ns = start_ns
        self.seq = 0
        self.sent = 0  # samples already framed
        self._carry = np.zeros((0, len(channels)), dtype=np.int32)

    def push(self, counts: np.ndarray, last: bool) -> Iterator[Frame]:
        data = np.concatenate([self._carry, counts])
        n_full = data.shape[0] // self.n_per
        cut = data.shape[0] if last else n_full * self.n_per
        for s in range(0, cut, self.n_per):
            chunk = data[s : min(s + self.n_per, cut)]
            is_last = last and s + self.n_per >= cut
            yield Frame(
                kind=self.kind,
                seq=self.seq,
                t0_ns=self.start_ns + round(self.sent * 1e9 / self.rate_hz),
                rate_hz=self.rate_hz,
                channels=self.channels,
                data=np.ascontiguousarray(chunk),
                flags=FLAG_END_OF_STREAM if is_last else 0,
            )
            self.seq += 1
            self.sent += chunk.shape[0]
        self._carry = data[cut:]
