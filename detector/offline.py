"""Offline detection: a recording through exactly the code the live service runs.

The recording is cut into frames (large ones, so the work is vectorised across many windows) in the
order a device would send them (:meth:`~crampwatch.recording.Recording.frames`), and fed to the same
:class:`~detector.stream.DeviceStreams` the service uses. Only the chunk size differs from live, and
chunking does not change the events. Samples under ``gap`` annotations (the filler ``cramp-collector
record`` writes for lost frames) are cut back out, so a recorded night meets the same continuity policy
offline as it did live.
"""

from __future__ import annotations

from crampwatch.recording import Recording

from .events import Event
from .model import Model
from .pipeline import PipelineOutput
from .stream import DeviceStreams

DEFAULT_CHUNK_S = 30.0


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
    for frame in rec.frames(chunk_s):
        out.extend(streams.on_frame(frame))
    out.extend(streams.finish())
    return out


def detect_recording(rec: Recording, model: Model, *, chunk_s: float = DEFAULT_CHUNK_S) -> list[Event]:
    """Events in ``rec``, times in seconds from the recording start."""
    return run_recording(rec, model, chunk_s=chunk_s).events
