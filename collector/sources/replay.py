"""Replay recording files as live devices: the frames a wearable would have sent, from a file.

A replayed file must be indistinguishable from a live device for the detector, so that a recording
replayed through ``cramp-detector serve`` gives exactly the events ``cramp-detector detect`` finds in it:

* Frames are cut by :meth:`~crampwatch.recording.Signal.frames` with **float64 payloads** (scale 1,
  offset 0), so every sample reaches the detector bit for bit as the file reader produced it. (Integer
  counts would be smaller on the wire but would re-quantise values that a reader already converted.)
* Each stream's frames carry consecutive sequence numbers from 0, device times from the file (first
  sample at ``start_ns``, ACC offset by its ``t0_s``) and the end-of-stream flag on the last frame.
* EMG and ACC frames are merged by the device time of their last sample, EMG first on ties: the order a
  device sends them in and the order :func:`detector.offline.recording_frames` uses.
* Samples under ``gap`` annotations (the filler ``cramp-collector record`` wrote for lost frames) are
  not sent, and the sequence numbers skip over them, as offline ``detect`` does
  (:func:`crampwatch.continuity.drop_annotated_gaps`).
* Several files replay as several devices at once, each from its own start time; :func:`merged` orders
  all their frames by time *since each file's start*, and :func:`paced` releases them at ``speed`` x real
  time (``None``: as fast as the broker takes them).
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from crampwatch.continuity import drop_annotated_gaps
from crampwatch.frames import Frame
from crampwatch.recording import Recording

__all__ = ["DEFAULT_FRAME_S", "ReplaySource", "device_id_for", "merged", "paced", "start_ns_of"]

DEFAULT_FRAME_S = 0.25
_NOT_ID = re.compile(r"[^A-Za-z0-9_.\-]+")


def start_ns_of(recording: Recording, override: int | None = None) -> int:
    """Device time of the first sample: ``override``, else the file's start (EDF header), else 0.

    A start without time zone (EDF stores local wall-clock time without one) is taken as UTC, so the
    same file always replays with the same device times, whatever the machine's zone.
    """
    if override is not None:
        return override
    start = recording.meta.get("start")
    if isinstance(start, datetime):
        aware = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        return round(aware.timestamp()) * 1_000_000_000 + aware.microsecond * 1000
    return 0


def device_id_for(name: str) -> str:
    """A valid device id (topic level) from a file stem: other characters become ``-``, at most 64."""
    return (_NOT_ID.sub("-", name).strip("-") or "file")[:64]


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """The frames of one recording, as one device would send them (see the module docstring)."""

    recording: Recording
    frame_s: float = DEFAULT_FRAME_S
    start_ns: int = 0

    def frames(self) -> Iterator[Frame]:
        rec = self.recording
        # Filler that `record` wrote for lost frames is not sent: the device never sent it either.
        emg = rec.emg.frames(self.frame_s, start_ns=self.start_ns)
        streams = [drop_annotated_gaps(emg, rec.annotations, rec.emg.t0_s)]
        if rec.acc is not None:
            acc = rec.acc.frames(self.frame_s, start_ns=self.start_ns)
            streams.append(drop_annotated_gaps(acc, rec.annotations, rec.acc.t0_s))
        for _, frame in heapq.merge(*(_keyed(s, i) for i, s in enumerate(streams)), key=lambda item: item[0]):
            yield frame


def _keyed(frames: Iterator[Frame], stream: int) -> Iterator[tuple[tuple[int, int], Frame]]:
    for f in frames:
        yield (f.t0_ns + f.duration_ns, stream), f


def merged(sources: Sequence[ReplaySource]) -> Iterator[tuple[int, Frame]]:
    """``(source index, frame)`` of all sources, by the end time of each frame since its source's start."""

    def rel(i: int, source: ReplaySource) -> Iterator[tuple[tuple[int, int], int, Frame]]:
        for f in source.frames():
            yield (f.t0_ns + f.duration_ns - source.start_ns, i), i, f

    for _, i, frame in heapq.merge(*(rel(i, s) for i, s in enumerate(sources)), key=lambda item: item[0]):
        yield i, frame


def paced(
    items: Iterator[tuple[int, Frame]], sources: Sequence[ReplaySource], speed: float | None
) -> Iterator[tuple[int, Frame]]:
    """Release each frame when its last sample would exist at ``speed`` x real time (None = at once)."""
    wall0 = time.monotonic()
    for i, frame in items:
        if speed:
            due = wall0 + (frame.t0_ns + frame.duration_ns - sources[i].start_ns) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield i, frame
