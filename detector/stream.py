"""Stream state: from a device's frames to the continuous sample streams the pipeline needs.

Per stream this checks sequence numbers (duplicates are dropped, gaps are filled with flagged filler so
device time stays aligned and no event is reported across missing data), converts units to µV and g,
and places the accelerometer on the EMG stream's clock. Live MQTT frames and offline files both come
through here, so both paths run the same code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from crampwatch.errors import StreamError
from crampwatch.frames import Frame, StreamKind
from crampwatch.units import UnitError, to_g, to_microvolts

from .model import Model
from .pipeline import DevicePipeline, PipelineOutput

log = logging.getLogger(__name__)

MAX_GAP_S = 600.0  # a longer silence restarts the stream rather than filling it


@dataclass
class StreamStats:
    """Counters a clinician or the status topic can show: what arrived, what was lost."""

    frames: int = 0
    samples: int = 0
    duplicates: int = 0
    gaps: int = 0
    lost_samples: int = 0


@dataclass
class _Stream:
    kind: StreamKind
    rate_hz: float
    n_channels: int
    factors: np.ndarray
    next_seq: int
    next_t_ns: int
    ended: bool = False
    last: np.ndarray | None = None  # last accelerometer reading, held across a gap
    stats: StreamStats = field(default_factory=StreamStats)


class DeviceStreams:
    """All streams of one (patient, device), feeding one :class:`DevicePipeline`."""

    def __init__(
        self,
        model: Model | None,
        patient: str,
        device: str,
        *,
        expect_acc: bool | None = None,
        keep_features: bool = False,
    ) -> None:
        self.model = model
        self.keep_features = keep_features
        self.patient = patient
        self.device = device
        self.expect_acc = expect_acc
        self.pipeline: DevicePipeline | None = None
        self.streams: dict[StreamKind, _Stream] = {}
        self._early_acc: list[Frame] = []
        self.finished = False

    def on_frame(self, frame: Frame) -> PipelineOutput:
        """Take one frame (in arrival order); returns events and summaries it completed."""
        out = PipelineOutput()
        if self.finished:
            log.warning(
                "%s/%s: %s frame seq %d after end of stream ignored",
                self.patient,
                self.device,
                frame.kind,
                frame.seq,
            )
            return out
        if frame.kind is StreamKind.ACC and self.pipeline is None:
            self._early_acc.append(frame)  # placed on the EMG clock once EMG starts
            return out
        stream = self.streams.get(frame.kind) or self._open(frame)
        if frame.seq < stream.next_seq:
            stream.stats.duplicates += 1
            log.info("%s/%s %s: duplicate frame seq %d dropped", self.patient, self.device, frame.kind, frame.seq)
            return out
        self._check_same_shape(stream, frame)
        if frame.seq > stream.next_seq:
            out.extend(self._fill_gap(stream, frame))
        values = frame.values() * stream.factors
        out.extend(self._push(stream, values))
        stream.stats.frames += 1
        stream.stats.samples += frame.n_samples
        stream.next_seq = frame.seq + 1
        stream.next_t_ns = frame.t0_ns + frame.duration_ns
        if frame.kind is StreamKind.EMG and self._early_acc:
            early, self._early_acc = self._early_acc, []
            for acc_frame in early:
                out.extend(self.on_frame(acc_frame))
        if frame.end_of_stream:
            stream.ended = True
            out.extend(self._maybe_finish())
        return out

    def finish(self) -> PipelineOutput:
        """Force the end (offline end of file, or a device declared gone)."""
        if self.finished or self.pipeline is None:
            return PipelineOutput()
        self.finished = True
        return self.pipeline.finish()

    # -- helpers -----------------------------------------------------------------------------------

    def _open(self, frame: Frame) -> _Stream:
        try:
            if frame.kind is StreamKind.EMG:
                factors = np.array([to_microvolts(c.unit) for c in frame.channels])
            else:
                if len(frame.channels) != 3:
                    raise StreamError(f"accelerometer frames need 3 channels (x, y, z), got {len(frame.channels)}")
                factors = np.array([to_g(c.unit) for c in frame.channels])
        except UnitError as err:
            raise StreamError(f"{self.patient}/{self.device} {frame.kind}: {err}") from None
        stream = _Stream(frame.kind, frame.rate_hz, len(frame.channels), factors, frame.seq, frame.t0_ns)
        self.streams[frame.kind] = stream
        if frame.kind is StreamKind.EMG:
            self.pipeline = DevicePipeline(
                self.model,
                patient=self.patient,
                device=self.device,
                start_ns=frame.t0_ns,
                expect_acc=self.expect_acc,
                keep_features=self.keep_features,
            )
        return stream

    def _check_same_shape(self, stream: _Stream, frame: Frame) -> None:
        if frame.rate_hz != stream.rate_hz or len(frame.channels) != stream.n_channels:
            raise StreamError(
                f"{self.patient}/{self.device} {frame.kind}: rate/channels changed mid-stream "
                f"({stream.rate_hz} Hz x {stream.n_channels} -> {frame.rate_hz} Hz x {len(frame.channels)}); "
                "restart the device's stream with a new device id"
            )

    def _fill_gap(self, stream: _Stream, frame: Frame) -> PipelineOutput:
        missing = round((frame.t0_ns - stream.next_t_ns) * stream.rate_hz / 1e9)
        stream.stats.gaps += 1
        stream.stats.lost_samples += max(0, missing)
        log.warning(
            "%s/%s %s: frames %d..%d lost (%.1f s of data)",
            self.patient,
            self.device,
            stream.kind,
            stream.next_seq,
            frame.seq - 1,
            missing / stream.rate_hz,
        )
        if missing <= 0 or missing > MAX_GAP_S * stream.rate_hz:
            return PipelineOutput()
        if stream.kind is StreamKind.EMG:
            assert self.pipeline is not None
            return self.pipeline.push_emg(np.zeros((missing, stream.n_channels)), stream.rate_hz, valid=False)
        # Lost accelerometer samples: hold the last reading rather than invent movement.
        held = stream.last if stream.last is not None else np.array([0.0, 0.0, 1.0])
        return self._push(stream, np.repeat(held[None, :], missing, axis=0))

    def _push(self, stream: _Stream, values: np.ndarray) -> PipelineOutput:
        assert self.pipeline is not None
        if stream.kind is StreamKind.EMG:
            return self.pipeline.push_emg(values, stream.rate_hz)
        if values.shape[0]:
            stream.last = values[-1]
        start_s = (stream.next_t_ns - self.pipeline.start_ns) / 1e9 if stream.stats.samples == 0 else 0.0
        return self.pipeline.push_acc(values, stream.rate_hz, start_s)

    def _maybe_finish(self) -> PipelineOutput:
        emg = self.streams.get(StreamKind.EMG)
        acc = self.streams.get(StreamKind.ACC)
        acc_done = acc.ended if acc is not None else self.expect_acc is not True
        if emg and emg.ended and (acc_done or self.expect_acc is False):
            return self.finish()
        return PipelineOutput()
