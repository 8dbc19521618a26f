"""Detected events as a Lab Streaming Layer marker stream, for lab software recording alongside.

Why: in a lab session the amplifier, video and stimuli are recorded by LabRecorder on LSL; with this sink
the detector's cramps and spasms land in the same XDF file, on the same clock, as markers.

One irregular-rate string stream (``type = Markers``, default name ``CrampWatch events``); each event is
one sample whose value is the event's JSON (:meth:`~detector.events.Event.to_json`) and whose time stamp
is the event **onset** on the LSL clock (the device time ``onset_ns`` mapped through the offset between
the wall clock and ``pylsl.local_clock()``), so markers line up with the signal, not with the moment of
detection, which comes a few seconds later. Summaries are not sent.

Use it with the service: ``DetectorService(settings, model, sinks=[..., LslMarkerSink()])``.
"""

from __future__ import annotations

import time
from typing import Any

from crampwatch.lsl import lsl_module

from ..events import Event, Summary

__all__ = ["LslMarkerSink"]


class LslMarkerSink:
    name = "lsl"

    def __init__(self, stream_name: str = "CrampWatch events", source_id: str = "crampwatch-detector") -> None:
        self._pylsl: Any = lsl_module()  # untyped; loads liblsl
        info = self._pylsl.StreamInfo(stream_name, "Markers", 1, 0.0, "string", source_id)
        self.outlet: Any = self._pylsl.StreamOutlet(info)

    def write_events(self, events: list[Event]) -> None:
        offset_s = time.time() - self._pylsl.local_clock()
        for e in events:
            self.outlet.push_sample([e.to_json()], e.onset_ns / 1e9 - offset_s)

    def write_summaries(self, summaries: list[Summary]) -> None:
        pass  # markers are for events only

    def close(self) -> None:
        self.outlet = None
