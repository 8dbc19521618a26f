"""The simulated wearable as a source: renders a :class:`~crampwatch.simulate.Night` in blocks."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

import numpy as np

from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.framing import FrameCutter, merge_by_end_time
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
        emg = FrameCutter(
            StreamKind.EMG,
            p.emg_rate_hz,
            tuple(Channel(n, EMG_UNIT, p.adc_resolution_uv) for n in emg_names),
            frame_s=self.frame_s,
            start_ns=self.start_ns,
        )
        acc = FrameCutter(
            StreamKind.ACC,
            p.acc_rate_hz,
            tuple(Channel(n, ACC_UNIT, ACC_RESOLUTION_G) for n in "xyz"),
            frame_s=self.frame_s,
            start_ns=self.start_ns,
        )
        # One render makes both streams' samples; each stream is read from its own queue, so that the
        # merge can take them by end time as a device sends them, holding about one block in memory.
        ready: tuple[deque[Frame], deque[Frame]] = (deque(), deque())
        blocks = self._render(emg, acc, ready)

        def stream(queue: deque[Frame]) -> Iterator[Frame]:
            while queue or next(blocks, None) is not None:
                while queue:
                    yield queue.popleft()

        for _, frame in merge_by_end_time([stream(ready[0]), stream(ready[1])]):
            yield frame

    def _render(self, emg: FrameCutter, acc: FrameCutter, ready: tuple[deque[Frame], deque[Frame]]) -> Iterator[int]:
        """Renders one block per step into the cutters and queues its frames (EMG, ACC)."""
        p = self.night.params
        duration = self.night.duration_s
        n_blocks = math.ceil(duration / RENDER_BLOCK_S)
        for b in range(n_blocks):
            start, stop = b * RENDER_BLOCK_S, min(duration, (b + 1) * RENDER_BLOCK_S)
            emg_uv, acc_g = self.night.render(start, stop)
            ready[0].extend(emg.push(np.round(emg_uv / p.adc_resolution_uv).astype(np.int32)))
            ready[1].extend(acc.push(np.round(acc_g / ACC_RESOLUTION_G).astype(np.int32)))
            if b == n_blocks - 1:
                ready[0].extend(emg.flush(end_of_stream=True))
                ready[1].extend(acc.flush(end_of_stream=True))
            yield b
