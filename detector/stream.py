"""Stream state: from a device's frames to the continuous sample streams the pipeline needs.

Per stream, :mod:`crampwatch.continuity` (the one home of continuity) drops duplicates, measures gaps,
and converts units to µV and g; this module acts on its verdicts and places the accelerometer on the EMG
stream's clock. A gap of up to ``MAX_FILL_S`` is filled with no-data filler, so device time stays aligned
and no event is reported across missing data. A longer one ends the running pipeline and starts a new
*epoch* at the first frame after it, whose events are reported on the device's original timeline (see
the long-gap policy in :mod:`crampwatch.continuity`); so does a sequence or device-time jump, and a
change of rate or channel count.

Every frame first meets the physical limits of :func:`crampwatch.limits.check_frame` (rate, channels,
samples, scales, values, device time): one that does not is refused with a
:class:`~crampwatch.errors.FrameError` before any state changes, so that nothing a sensor could not have
sent reaches the pipeline. Live MQTT frames and offline files both come
through here, so both paths run the same code.
"""

from __future__ import annotations

import dataclasses
import logging

from crampwatch.continuity import MAX_FILL_S, FloatArray, Gap, Step, StreamContinuity, StreamStats
from crampwatch.errors import StreamError
from crampwatch.frames import Frame, StreamKind
from crampwatch.limits import MAX_FRAME_S, check_frame

from .events import Event
from .model import Model
from .pipeline import DevicePipeline, PipelineOutput

__all__ = ["DeviceStreams", "StreamStats"]

log = logging.getLogger(__name__)

#: Accelerometer frames kept while a device's EMG has not started (they are placed on the EMG clock once
#: it does). Live, EMG starts within a frame or two; the bound only stops an ACC-only sender from growing
#: the list without end. The oldest go first.
MAX_EARLY_ACC_FRAMES = 1_000


class DeviceStreams:
    """All streams of one (patient, device), feeding one :class:`DevicePipeline` per epoch."""

    def __init__(
        self,
        model: Model | None,
        patient: str,
        device: str,
        *,
        expect_acc: bool | None = None,
        keep_features: bool = False,
        decide_windows: int = 0,
        max_frame_s: float = MAX_FRAME_S,
        max_frame_values: int | None = None,
        batch_model: bool = False,
        open_events: bool = False,
    ) -> None:
        self.model = model
        self.open_events = open_events  # live: also report events in state "open" (see DevicePipeline)
        self.batch_model = batch_model  # see DevicePipeline: the caller scores pending_windows() itself
        # The live service allows smaller frames than offline chunks need (crampwatch.limits).
        self.max_frame_s = max_frame_s
        self.max_frame_values = max_frame_values
        self.keep_features = keep_features
        self.decide_windows = decide_windows  # see DevicePipeline: offline decides in large batches
        self.patient = patient
        self.device = device
        self.expect_acc = expect_acc
        self.pipeline: DevicePipeline | None = None
        self.streams: dict[StreamKind, StreamContinuity] = {}
        self._early_acc: list[Frame] = []
        self._ended: set[StreamKind] = set()
        self._stats: dict[StreamKind, StreamStats] = {}  # kept across epochs
        self._stale: dict[StreamKind, StreamContinuity] = {}  # streams running when the last epoch ended
        self.origin_ns: int | None = None  # device time of the first EMG sample of the first epoch
        self.epochs = 0
        self.finished = False

    def on_frame(self, frame: Frame) -> PipelineOutput:
        """Take one frame (in arrival order); returns events and summaries it completed.

        Raises :class:`~crampwatch.errors.FrameError` for a frame beyond physical limits and
        :class:`~crampwatch.errors.StreamError` for one whose units are not of its kind; the stream's
        state is then as it was before the frame.
        """
        check_frame(frame, max_frame_s=self.max_frame_s, max_values=self.max_frame_values)
        return self._take(frame)

    def _take(self, frame: Frame) -> PipelineOutput:
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
            if len(self._early_acc) > MAX_EARLY_ACC_FRAMES:
                dropped = self._early_acc.pop(0)
                log.warning(
                    "%s/%s: no EMG yet after %d accelerometer frames; dropped ACC frame seq %d",
                    self.patient,
                    self.device,
                    MAX_EARLY_ACC_FRAMES,
                    dropped.seq,
                )
            return out
        stream = self.streams.get(frame.kind)
        if stream is None:
            stale = self._stale.pop(frame.kind, None)
            if stale is not None and self._check(stale, frame)[0] is Step.DUPLICATE:
                self._stale[frame.kind] = stale
                return out
            # A stream that ran on when another stream's break ended the epoch has now had its own
            # gap counted against where it stopped; it starts afresh in the new epoch at this frame.
            stream = self._open(frame)
        step, gap = self._check(stream, frame)
        if step is Step.DUPLICATE:
            return out
        if step is Step.BREAK:
            out.extend(self._new_epoch(frame.kind))
            out.extend(self._take(frame))  # the frame opens the new epoch (ACC: waits for EMG to)
            return out
        if gap is not None:
            out.extend(self._fill_gap(stream, gap))
        out.extend(self._push(stream, frame.t0_ns, stream.accept(frame)))
        if frame.kind is StreamKind.EMG and self._early_acc:
            early, self._early_acc = self._early_acc, []
            for acc_frame in early:
                out.extend(self._take(acc_frame))
        if frame.end_of_stream:
            self._ended.add(frame.kind)
            out.extend(self._maybe_finish())
        return out

    def finish(self) -> PipelineOutput:
        """Force the end (offline end of file, or a device declared gone)."""
        if self.finished or self.pipeline is None:
            return PipelineOutput()
        self.finished = True
        return self._on_timeline(self.pipeline.finish())

    def pending_windows(self) -> FloatArray | None:
        """With ``batch_model``: the feature rows waiting for the model (see :meth:`DevicePipeline.decide`)."""
        return self.pipeline.pending_windows() if self.pipeline is not None else None

    def decide(self, probs_all: FloatArray | None) -> PipelineOutput:
        """With ``batch_model``: continue from the probabilities of :meth:`pending_windows`.

        Only the running epoch can have pending windows: ending an epoch decides its windows at once.
        """
        if self.pipeline is None:
            return PipelineOutput()
        return self._on_timeline(self.pipeline.decide(probs_all))

    def stats(self, kind: StreamKind) -> StreamStats | None:
        """What arrived and what was lost on stream ``kind``, over all epochs."""
        return self._stats.get(kind)

    # -- helpers -----------------------------------------------------------------------------------

    def _open(self, frame: Frame) -> StreamContinuity:
        try:
            stream = StreamContinuity(frame)
        except StreamError as err:
            raise StreamError(f"{self.patient}/{self.device} {frame.kind}: {err}") from None
        # Counters run on across epochs: a break is part of the stream's story, not a new stream.
        stream.stats = self._stats.setdefault(frame.kind, stream.stats)
        self.streams[frame.kind] = stream
        if frame.kind is StreamKind.EMG:
            if self.origin_ns is None:
                self.origin_ns = frame.t0_ns
            self.epochs += 1
            self.pipeline = DevicePipeline(
                self.model,
                patient=self.patient,
                device=self.device,
                start_ns=frame.t0_ns,
                expect_acc=self.expect_acc,
                keep_features=self.keep_features,
                decide_windows=self.decide_windows,
                batch_model=self.batch_model,
                open_events=self.open_events,
            )
        return stream

    def _check(self, stream: StreamContinuity, frame: Frame) -> tuple[Step, Gap | None]:
        try:
            step, gap = stream.check(frame)
        except StreamError as err:
            # A rate or channel change: the samples no longer continue the stream. A new epoch in the new
            # format, rather than refusing every later frame: a device may be reconfigured, and one forged
            # frame in another format that opened the device must not make the real stream unusable.
            log.warning(
                "%s/%s %s; detection restarts with a new epoch at seq %d", self.patient, self.device, err, frame.seq
            )
            stream.stats.jumps += 1
            return Step.BREAK, None
        if step is Step.DUPLICATE:
            log.info("%s/%s %s: duplicate frame seq %d dropped", self.patient, self.device, frame.kind, frame.seq)
        elif gap is not None and gap.reason:
            log.warning(
                "%s/%s %s: %s at seq %d; detection restarts with a new epoch at this frame",
                self.patient,
                self.device,
                gap.kind,
                gap.reason,
                frame.seq,
            )
        elif gap is not None:
            log.warning(
                "%s/%s %s: frames %d..%d lost (%.1f s of data)%s",
                self.patient,
                self.device,
                gap.kind,
                gap.first_seq,
                gap.last_seq,
                gap.duration_s,
                f"; longer than {MAX_FILL_S:.0f} s, so detection restarts after it" if step is Step.BREAK else "",
            )
        return step, gap

    def _new_epoch(self, broken: StreamKind) -> PipelineOutput:
        """End the running pipeline at a break; the next EMG frame starts a fresh one at its own time."""
        out = self._on_timeline(self.pipeline.finish()) if self.pipeline is not None else PipelineOutput()
        self.pipeline = None
        self._stale = {k: s for k, s in self.streams.items() if k is not broken}
        self.streams.clear()
        self._ended.clear()
        return out

    def _fill_gap(self, stream: StreamContinuity, gap: Gap) -> PipelineOutput:
        assert self.pipeline is not None
        out = PipelineOutput()
        t_ns = gap.start_ns
        for block in stream.filler(gap):
            if stream.kind is StreamKind.EMG:
                out.extend(self._on_timeline(self.pipeline.push_emg(block, stream.rate_hz, valid=False)))
            else:  # lost accelerometer samples: the held last reading, rather than invented movement
                out.extend(self._push(stream, t_ns, block))
            t_ns += round(block.shape[0] * 1e9 / stream.rate_hz)
        return out

    def _push(self, stream: StreamContinuity, t0_ns: int, values: FloatArray) -> PipelineOutput:
        """Samples from device time ``t0_ns`` on, to the pipeline."""
        assert self.pipeline is not None
        if stream.kind is StreamKind.EMG:
            return self._on_timeline(self.pipeline.push_emg(values, stream.rate_hz))
        # The ACC stream's first sample is placed on the EMG clock; later pushes continue it.
        start_s = (t0_ns - self.pipeline.start_ns) / 1e9 if self.pipeline.acc is None else 0.0
        return self._on_timeline(self.pipeline.push_acc(values, stream.rate_hz, start_s))

    def _on_timeline(self, out: PipelineOutput) -> PipelineOutput:
        """Events (and window times) of a later epoch, moved onto the first epoch's timeline."""
        if self.pipeline is None or self.origin_ns is None or self.pipeline.start_ns == self.origin_ns:
            return out
        shift_s = (self.pipeline.start_ns - self.origin_ns) / 1e9
        out.events = [_shifted(e, shift_s, self.origin_ns) for e in out.events]
        if out.window_end_s is not None:
            out.window_end_s = out.window_end_s + shift_s
        return out

    def _maybe_finish(self) -> PipelineOutput:
        emg_done = StreamKind.EMG in self._ended
        acc_done = StreamKind.ACC in self._ended if StreamKind.ACC in self.streams else self.expect_acc is not True
        if emg_done and (acc_done or self.expect_acc is False):
            return self.finish()
        return PipelineOutput()


def _shifted(e: Event, shift_s: float, origin_ns: int) -> Event:
    return dataclasses.replace(
        e, onset_s=round(e.onset_s + shift_s, 3), offset_s=round(e.offset_s + shift_s, 3), start_ns=origin_ns
    )
