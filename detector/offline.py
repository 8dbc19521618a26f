"""Offline detection: a recording through exactly the code the live service runs.

The recording is cut into frames (large ones, so the work is vectorised across many windows) in the
order a device would send them (:meth:`~crampwatch.recording.Recording.frames`), and fed to the same
:class:`~detector.stream.DeviceStreams` the service uses. Only the chunk size differs from live, and
chunking does not change the events. Samples under ``gap`` annotations (the filler ``cramp-collector
record`` writes for lost frames) are cut back out, so a recorded night meets the same continuity policy
offline as it did live.

A file that can be streamed (EDF/BDF through :func:`crampwatch.formats.open_recording`) is read a block
at a time as the frames go, so memory stays flat however long the night. Offline, windows are decided in
batches of ``OFFLINE_DECIDE_WINDOWS`` (one model call per batch instead of one per frame): decisions do not
depend on the batch, only the speed does.
"""

from __future__ import annotations

from crampwatch.recording import Recording, StreamedRecording

from .events import Event
from .model import Model
from .pipeline import PipelineOutput
from .stream import DeviceStreams

#: Seconds per offline frame. Each frame costs a fixed overhead in every stage (checks, filters, windows,
#: summaries): 90 s frames took 30 % less CPU than 30 s ones on a 1-h night, and stay within the 120 s
#: crampwatch.limits.MAX_FRAME_S allows whatever the rounding of an odd sample rate.
DEFAULT_CHUNK_S = 90.0
#: Windows decided per model call offline: 20 minutes. Scoring costs a fixed overhead per tree and call,
#: so a call on 60 windows (one 30 s chunk) cost over five times as much per window as one on thousands.
OFFLINE_DECIDE_WINDOWS = 2400


def run_recording(
    rec: Recording | StreamedRecording,
    model: Model | None,
    *,
    chunk_s: float = DEFAULT_CHUNK_S,
    patient: str = "offline",
    device: str = "file",
    keep_features: bool = False,
) -> PipelineOutput:
    """Feed ``rec`` through a fresh device pipeline and collect everything it produced."""
    streams = DeviceStreams(
        model,
        patient,
        device,
        expect_acc=rec.acc is not None,
        keep_features=keep_features,
        decide_windows=OFFLINE_DECIDE_WINDOWS,
    )
    out = PipelineOutput()
    for frame in rec.frames(chunk_s):
        out.extend(streams.on_frame(frame))
    out.extend(streams.finish())
    return out


def detect_recording(
    rec: Recording | StreamedRecording, model: Model, *, chunk_s: float = DEFAULT_CHUNK_S
) -> list[Event]:
    """Events in ``rec``, times in seconds from the recording start."""
    return run_recording(rec, model, chunk_s=chunk_s).events
