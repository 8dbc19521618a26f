"""Offline detection: a recording through exactly the code the live service runs.

The recording is cut into frames (large ones, so the work is vectorised across many windows) in the
order a device would send them, and fed to the same :class:`~detector.stream.DeviceStreams` the
service uses. Only the chunk size differs from live, and chunking does not change the events. Samples
under ``gap`` annotations (the filler ``cramp-collector record`` writes for lost frames) are cut back out
(:func:`crampwatch.continuity.drop_annotated_gaps`), so a recorded night meets the same continuity policy
offline as it did live.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from crampwatch.continuity import drop_annotated_gaps
from crampwatch.frames import Frame
from crampwatch.recording import Recording

from .events import Event
from .model import Model
from .pipeline import PipelineOutput
from .stream import DeviceStreams

DEFAULT_CHUNK_S = 30.0


def recording_frames(rec: Recording, chunk_s: float = DEFAULT_CHUNK_S) -> Iterator[Frame]:
    """EMG and ACC frames of ``rec`` merged by frame end time (EMG first on ties), as a device sends."""
    streams = [drop_annotated_gaps(rec.emg.frames(chunk_s), rec.annotations, rec.emg.t0_s)]
    if rec.acc is not None:
        streams.append(drop_annotated_gaps(rec.acc.frames(chunk_s), rec.annotations, rec.acc.t0_s))
    for _, frame in heapq.merge(
        *[(((f.t0_ns + f.duration_ns, i), f) for f in s) for i, s in enumerate(streams)],
        key=lambda item: item[0],
    ):
        yield frame


def run_recording(
    rec: Recording,
    model: Model | None,
    *,
    chunk_s: float = DEFAULT_CHUNK_S,
    patient: str = "offline",
    device: str = "file",
    keep_features: bool = False,
) -> PipelineOutput:
    """Feed ``rec`` through a fresh device pipeline and collect everything it produced."""
    streams = DeviceStreams(model, patient, device, expect_acc=rec.acc is not None, keep_features=keep_features)
    out = PipelineOutput()
    for frame in recording_frames(rec, chunk_s):
        out.extend(streams.on_frame(frame))
    out.extend(streams.finish())
    return out


def detect_recording(rec: Recording, model: Model, *, chunk_s: float = DEFAULT_CHUNK_S) -> list[Event]:
    """Events in ``rec``, times in seconds from the recording start."""
    return run_recording(rec, model, chunk_s=chunk_s).events
