"""From samples to wire frames, and from several streams of frames to the order a device sends them.

Every source cuts its streams here, so a frame looks the same whoever made it (simulator, file replay,
LSL, BLE, the offline detector):

* :class:`FrameCutter` cuts one stream's sample blocks into frames of ``round(frame_s x rate)`` samples.
  Frame ``k`` after the time anchor starts at ``anchor + round(samples_before_it x 1e9 / rate)`` ns, so
  rounding never accumulates over a night; sequence numbers count up by one, and skip one where samples
  are known to be missing (:meth:`FrameCutter.mark_gap`), which is how the detector learns of a gap.
* :func:`merge_by_end_time` interleaves streams by the device time of each frame's last sample, the
  earlier stream first on ties: the order in which a device has its frames complete, so EMG and ACC
  reach the detector as they would live.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .frames import FLAG_END_OF_STREAM, Channel, Frame, StreamKind

__all__ = ["FrameCutter", "merge_by_end_time"]


class FrameCutter:
    """Cuts one stream into numbered, timed frames of ``frame_s`` seconds.

    Args:
        kind, rate_hz, channels: what every frame of the stream carries.
        frame_s: seconds of samples per frame (at least one sample).
        start_ns: device time of the first sample; a later :meth:`push` with ``time_ns`` may move it.
        first_seq: sequence number of the first frame.
        dtype: payload dtype of the frames (default: the pushed data's own).
        hold_last_sample: keep at least one sample back until :meth:`flush`, so that the end-of-stream
            flag always has a frame to ride on (for sources that learn only afterwards that a stream
            ended). Without it a full frame leaves at once.
    """

    def __init__(
        self,
        kind: StreamKind,
        rate_hz: float,
        channels: tuple[Channel, ...],
        *,
        frame_s: float,
        start_ns: int = 0,
        first_seq: int = 0,
        dtype: npt.DTypeLike | None = None,
        hold_last_sample: bool = True,
    ) -> None:
        self.kind = kind
        self.rate_hz = rate_hz
        self.channels = channels
        self.n_per = max(1, round(frame_s * rate_hz))
        self.dtype = dtype
        self.hold_last_sample = hold_last_sample
        self.next_seq = first_seq
        self.frames = 0  # frames cut so far
        self.samples = 0  # samples in them
        self._anchor_ns = start_ns
        self._since_anchor = 0  # samples framed since the anchor
        self._parts: list[npt.NDArray[Any]] = []
        self._pending = 0
        self._gap = False

    @property
    def pending(self) -> int:
        """Samples pushed but not yet in a frame."""
        return self._pending

    def mark_gap(self) -> None:
        """Samples are missing before the next frame: its sequence number skips one (once, however often
        this is called before it), so the detector sees the gap and fills it from the frame times."""
        self._gap = True

    def push(self, data: npt.NDArray[Any], *, time_ns: int | None = None) -> list[Frame]:
        """Add ``(n_samples, n_channels)`` samples; returns the frames they completed.

        ``time_ns`` is the device time of the block's first sample. It re-anchors the stream's timing only
        when nothing is pending (a frame's samples are always evenly spaced from its first one).
        """
        if data.shape[0] == 0:
            return []
        if self._pending == 0 and time_ns is not None:
            self._anchor_ns, self._since_anchor = time_ns, 0
        self._parts.append(data)
        self._pending += int(data.shape[0])
        keep = 1 if self.hold_last_sample else 0
        return [self._cut(self.n_per) for _ in range(max(0, self._pending - keep) // self.n_per)]

    def flush(self, *, end_of_stream: bool = False) -> list[Frame]:
        """Everything pending as frames (the last one short), the last with the end-of-stream flag if asked."""
        count = -(-self._pending // self.n_per)
        return [self._cut(min(self.n_per, self._pending), last=end_of_stream and i == count - 1) for i in range(count)]

    def _cut(self, n: int, *, last: bool = False) -> Frame:
        # A frame inside one pushed block is a view of it; only a frame spanning blocks is copied.
        head = self._parts[0]
        if head.shape[0] >= n:
            chunk, rest = head[:n], head[n:]
            self._parts[0:1] = [rest] if rest.shape[0] else []
        else:
            taken: list[npt.NDArray[Any]] = []
            need = n
            while need:
                part = self._parts[0]
                taken.append(part[:need])
                if part.shape[0] > need:
                    self._parts[0] = part[need:]
                    need = 0
                else:
                    need -= int(part.shape[0])
                    del self._parts[0]
            chunk = np.concatenate(taken)
        self._pending -= n
        if self._gap:
            self.next_seq += 1
            self._gap = False
        frame = Frame(
            kind=self.kind,
            seq=self.next_seq,
            t0_ns=self._anchor_ns + round(self._since_anchor * 1e9 / self.rate_hz),
            rate_hz=self.rate_hz,
            channels=self.channels,
            data=np.ascontiguousarray(chunk, dtype=self.dtype),
            flags=FLAG_END_OF_STREAM if last else 0,
        )
        self.next_seq += 1
        self.frames += 1
        self.samples += n
        self._since_anchor += n
        return frame


def merge_by_end_time(
    streams: Sequence[Iterable[Frame]], *, start_ns: Sequence[int] | None = None
) -> Iterator[tuple[int, Frame]]:
    """``(stream index, frame)`` of all ``streams``, by the time of each frame's last sample.

    Each stream must already be in that order (a source's frames are). ``start_ns`` (one per stream)
    makes the times relative to each stream's own start, for devices replayed side by side from
    different start times. Ties go to the earlier stream (EMG before ACC, as a device sends them).
    """
    offsets = start_ns if start_ns is not None else [0] * len(streams)

    def keyed(index: int, frames: Iterable[Frame]) -> Iterator[tuple[int, int, Frame]]:
        for frame in frames:
            yield frame.t0_ns + frame.duration_ns - offsets[index], index, frame

    for _, index, frame in heapq.merge(*(keyed(i, s) for i, s in enumerate(streams)), key=lambda item: item[:2]):
        yield index, frame
