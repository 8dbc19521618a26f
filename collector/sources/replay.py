"""Replay recording files as live devices: the frames a wearable would have sent, from a file.

A replayed file must be indistinguishable from a live device for the detector, so that a recording
replayed through ``cramp-detector serve`` gives exactly the events ``cramp-detector detect`` finds in it:

* Frames are cut by :meth:`~crampwatch.recording.Recording.frames` with **float64 payloads** (scale 1,
  offset 0), so every sample reaches the detector bit for bit as the file reader produced it. (Integer
  counts would be smaller on the wire but would re-quantise values that a reader already converted.)
* Each stream's frames carry consecutive sequence numbers from 0, device times from the file (first
  sample at ``start_ns``, ACC offset by its ``t0_s``) and the end-of-stream flag on the last frame.
* EMG and ACC frames are merged by the device time of their last sample, EMG first on ties: the order a
  device sends them in and the order the offline detector uses.
* Samples under ``gap`` annotations (the filler ``cramp-collector record`` wrote for lost frames) are
  not sent, and the sequence numbers skip over them, as offline ``detect`` does
  (:meth:`crampwatch.recording.Recording.frames`).
* Several files replay as several devices at once, each from its own start time: the source loop
  (:mod:`collector.relay`) orders all their frames by time *since each file's start*.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from crampwatch.frames import Frame
from crampwatch.recording import Recording

__all__ = ["DEFAULT_FRAME_S", "ReplaySource", "device_id_for", "start_ns_of"]

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
        return self.recording.frames(self.frame_s, start_ns=self.start_ns)
