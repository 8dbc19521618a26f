"""Stream continuity, written once: duplicates, gaps, unit factors and the long-gap policy.

Every consumer of live frames (the detector service and offline ``detect`` through
:class:`detector.stream.DeviceStreams`, and ``cramp-collector record``) keeps one
:class:`StreamContinuity` per stream and asks it, frame by frame, what the frame means for the stream's
timeline (:meth:`StreamContinuity.check`), then takes the frame's samples in canonical units from it
(:meth:`StreamContinuity.accept`).

Sequence numbers tell what happened; device time tells how much:

* ``seq`` below the next expected one: a **duplicate** (a QoS 1 redelivery, a spool replay). Dropped and
  counted.
* ``seq`` the next expected one: the stream goes on.
* ``seq`` above it: frames were **lost**. How many samples is taken from device time
  (``t0_ns`` of this frame minus the end of the last one), because a device may cut frames of any size.
  If device time says nothing is missing, nothing is filled (the counter jumped, not the data).

The long-gap policy. Up to :data:`MAX_FILL_S` of missing samples is a :attr:`Step.GAP`: it is *filled*,
EMG with zeros marked as no data, ACC by holding the last reading (inventing movement would be worse),
so the stream stays continuous in device time and a short dropout costs nothing but the lost windows.
Filler is handed out in blocks of at most :data:`FILL_BLOCK_S` (:meth:`StreamContinuity.filler`), so
filling never allocates the whole gap. A longer hole is a :attr:`Step.BREAK`, and each consumer keeps
its timeline right in the way that suits it:

* **The detector** does not fill a break: hours of zeros would cost time, and the 30-minute resting
  baseline and every carried filter state would describe a sensor that was not there. It ends the
  running pipeline at the gap (an event open there is closed where the data stopped) and starts a new
  *epoch*, a fresh pipeline whose clock starts at the first frame after the gap. Its events are
  reported on the device's original timeline (``onset_s`` from the first sample of the night, the same
  ``start_ns``), so every event after the gap is stamped at its own device time, never early.
* **The recorder** writes one continuous EDF+/BDF+ file (EDF+D, the discontinuous variant, is not read
  by most viewers nor by our reader), so it fills every gap and break in blocks straight to its
  temporary file and writes an EDF+ annotation ``gap`` (subtype ``emg``/``acc``) over it. The file's
  time axis is then device time. Only a jump beyond :data:`MAX_RECORD_GAP_S` (a device clock reset, not
  a dropout) is not filled: the recorder stops there and writes what came before.
* **Offline detection of such a file** cuts the ``gap`` annotations back out of the frames
  (:func:`drop_annotated_gaps`), so the detector meets the same holes the live service met and applies
  the same policy: a recorded night gives the events the live service gave.

Jumps. Sequence numbers and device time come from outside, and a frame that claims either far from where
the stream is must not take the stream with it. So three more things are a :attr:`Step.BREAK` (a new
epoch, logged with :attr:`Gap.reason`), never a reason to drop later frames:

* ``seq`` more than :data:`MAX_SEQ_JUMP` ahead: no dropout loses that many frames (the counter jumped);
* device time more than :data:`MAX_FILL_S` away from where the stream is, either way, even with the next
  ``seq`` (a clock reset, or a frame stamped far off);
* ``seq`` *below* the next expected one at a device time the epoch has not seen (before its first frame,
  or after its end): not a redelivery, whose time the stream has seen, but a restarted device counting
  from 0 again, or real frames after a forged one far ahead. Only a frame whose time lies in the span
  the epoch covered is a duplicate. Without this, one forged frame with a far-ahead ``seq`` made every
  later real frame a "duplicate" and silenced the patient; now it costs at most the device time it claimed
  beyond the real stream, and never more than :data:`MAX_FILL_S`.

Gaps and breaks are counted in :class:`StreamStats` (``gaps``, ``lost_samples``), for the status topic
and logs. Rate or channel changes mid-stream are errors (:class:`~crampwatch.errors.StreamError`): the
samples would no longer mean the same thing.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from .errors import StreamError
from .frames import Frame, StreamKind, scale_by
from .recording import Annotation
from .units import UnitError, factors

__all__ = [
    "FILL_BLOCK_S",
    "MAX_FILL_BLOCK_SAMPLES",
    "MAX_FILL_S",
    "MAX_RECORD_GAP_S",
    "MAX_SEQ_JUMP",
    "Gap",
    "Step",
    "StreamContinuity",
    "StreamStats",
    "drop_annotated_gaps",
]


FloatArray = npt.NDArray[np.float64]

#: Longest hole filled with no-data filler; a longer one is a break (see the module docstring).
MAX_FILL_S: Final = 600.0
#: Filler is handed out in blocks of at most this many seconds, so memory stays bounded.
FILL_BLOCK_S: Final = 10.0
#: And at most this many samples, so a claimed high rate cannot make a block large (memory per block is
#: bounded whatever the rate; 10 s at 10 kHz, the highest EMG rate crampwatch.limits accepts).
MAX_FILL_BLOCK_SAMPLES: Final = 100_000
#: A sequence number further ahead than this is a counter jump, not lost frames: a 600 s dropout of the
#: smallest frames (one sample at the fastest 2 kHz accelerometer) loses 1.2 million, live frames of 0.25 s
#: lose 2,400. Such a frame starts a new epoch instead of being taken as the stream's continuation.
MAX_SEQ_JUMP: Final = 2_000_000
#: A redelivered frame may start this much before its epoch's first frame and still count as a duplicate
#: (device clocks and the collector's stamping jitter by far less). There is no slack after the end of what
#: the epoch has seen: a redelivered frame started before that end, and a slack there would be real frames
#: silenced after a forged one.
DUPLICATE_SLACK_NS: Final = 1_000_000_000
#: Longest hole the recorder fills in its file: longer is a device clock jump, not a dropout.
MAX_RECORD_GAP_S: Final = 24 * 3600.0
#: An accelerometer with no reading yet is taken to lie still, supine (the simulator's and most
#: nights' common posture); only reachable when a stream's first frame was empty.
_RESTING_G: Final = (0.0, 0.0, 1.0)


class Step(enum.Enum):
    """What a frame means for its stream's timeline."""

    NEXT = "next"  # the frame continues the stream
    DUPLICATE = "duplicate"  # already seen: drop it
    GAP = "gap"  # frames were lost; fill the hole (it is at most MAX_FILL_S), then take the frame
    BREAK = "break"  # frames lost over more than MAX_FILL_S, or a jump (Gap.reason); see the long-gap policy


@dataclass
class StreamStats:
    """Counters a clinician or the status topic can show: what arrived, what was lost."""

    frames: int = 0
    samples: int = 0
    duplicates: int = 0
    gaps: int = 0
    lost_samples: int = 0
    jumps: int = 0  # sequence or device-time jumps that started a new epoch


@dataclass(frozen=True, slots=True)
class Gap:
    """Frames lost before a frame: ``missing`` samples (by device time) from ``start_ns`` on.

    ``reason`` is empty for a dropout; for a jump (a :attr:`Step.BREAK` that is no dropout) it says what
    jumped, for the log. ``missing`` may then be negative (device time went back).
    """

    kind: StreamKind
    first_seq: int
    last_seq: int
    start_ns: int
    missing: int
    rate_hz: float
    reason: str = ""

    @property
    def duration_s(self) -> float:
        return self.missing / self.rate_hz


class StreamContinuity:
    """Continuity state of one stream, opened with the stream's first frame.

    Raises :class:`~crampwatch.errors.StreamError` when a channel's unit is not one of its kind.
    """

    def __init__(self, frame: Frame) -> None:
        if frame.kind is StreamKind.ACC and len(frame.channels) != 3:
            raise StreamError(f"accelerometer frames need 3 channels (x, y, z), got {len(frame.channels)}")
        try:
            self.factors = factors(frame.kind, (c.unit for c in frame.channels))
        except UnitError as err:
            raise StreamError(str(err)) from None
        self.kind = frame.kind
        self.rate_hz = frame.rate_hz
        self.names = tuple(c.name for c in frame.channels)
        self.first_t0_ns = frame.t0_ns
        self.next_seq = frame.seq
        self.next_t_ns = frame.t0_ns
        self.last: FloatArray | None = None  # last real reading, held across an ACC gap
        self.stats = StreamStats()

    @property
    def n_channels(self) -> int:
        return len(self.names)

    def check(self, frame: Frame) -> tuple[Step, Gap | None]:
        """Classify ``frame`` (and count it): the step, and the gap before it for GAP and BREAK.

        Raises :class:`~crampwatch.errors.StreamError` when the rate or channel count changed; the
        caller adds what to do about it in its own terms.
        """
        if frame.rate_hz != self.rate_hz or len(frame.channels) != self.n_channels:
            raise StreamError(
                f"{self.kind.value.upper()} rate/channels changed mid-stream ({self.rate_hz:g} Hz x "
                f"{self.n_channels} -> {frame.rate_hz:g} Hz x {len(frame.channels)})"
            )
        missing = round((frame.t0_ns - self.next_t_ns) * self.rate_hz / 1e9)
        max_fill = MAX_FILL_S * self.rate_hz
        if frame.seq < self.next_seq:
            if self.first_t0_ns - DUPLICATE_SLACK_NS <= frame.t0_ns < self.next_t_ns:
                self.stats.duplicates += 1
                return Step.DUPLICATE, None
            return Step.BREAK, self._jump(
                frame,
                missing,
                f"sequence number went back from {self.next_seq} to {frame.seq} at a device time this stream "
                "has not seen (a restarted device, or frames after a forged one)",
            )
        if frame.seq - self.next_seq > MAX_SEQ_JUMP:
            return Step.BREAK, self._jump(
                frame, missing, f"sequence number jumped ahead by {frame.seq - self.next_seq} frames"
            )
        if abs(missing) > max_fill and (missing < 0 or frame.seq == self.next_seq):
            return Step.BREAK, self._jump(
                frame,
                missing,
                f"device time jumped by {missing / self.rate_hz:+.1f} s"
                + (" with no frame missing" if frame.seq == self.next_seq else ""),
            )
        if frame.seq == self.next_seq:
            return Step.NEXT, None
        gap = Gap(self.kind, self.next_seq, frame.seq - 1, self.next_t_ns, missing, self.rate_hz)
        self.stats.gaps += 1
        self.stats.lost_samples += max(0, missing)
        return (Step.BREAK if missing > max_fill else Step.GAP), gap

    def _jump(self, frame: Frame, missing: int, reason: str) -> Gap:
        self.stats.jumps += 1
        return Gap(self.kind, self.next_seq, frame.seq - 1, self.next_t_ns, missing, self.rate_hz, reason)

    def accept(self, frame: Frame) -> FloatArray:
        """The frame's samples in µV or g; the stream now continues after it."""
        values = frame.values()
        scale_by(values, self.factors)
        if values.shape[0]:
            self.last = values[-1]
        self.stats.frames += 1
        self.stats.samples += frame.n_samples
        self.next_seq = frame.seq + 1
        self.next_t_ns = frame.t0_ns + frame.duration_ns
        return values

    def filler(self, gap: Gap) -> Iterator[FloatArray]:
        """Samples standing in for ``gap``, in blocks of at most FILL_BLOCK_S: EMG zeros, ACC held."""
        block = max(1, min(round(FILL_BLOCK_S * self.rate_hz), MAX_FILL_BLOCK_SAMPLES))
        if self.kind is StreamKind.EMG:
            value = np.zeros(self.n_channels)
        else:
            value = self.last if self.last is not None else np.array(_RESTING_G)
        for start in range(0, max(0, gap.missing), block):
            n = min(block, gap.missing - start)
            yield np.repeat(value[None, :], n, axis=0)


def drop_annotated_gaps(
    frames: Iterable[Frame], annotations: Iterable[Annotation], t0_s: float = 0.0
) -> Iterator[Frame]:
    """``frames`` of one stream without the samples under its ``gap`` annotations (the recorder's filler).

    The first frame after a hole skips one sequence number, so a consumer sees the hole as it was live:
    lost frames, and the lost duration from device time. ``t0_s`` is the stream's first sample relative
    to the recording start, where annotation times count from. A recording without ``gap`` annotations
    for this stream passes through unchanged (the same frame objects). A stream that ends inside a hole
    loses its end-of-stream flag with the cut samples; offline detection ends at the end of the file.
    """
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    holes = [
        (a.onset_s - t0_s, a.offset_s - t0_s)
        for a in annotations
        if a.type == "gap" and a.subtype in ("", first.kind.value) and a.offset_s > a.onset_s
    ]
    if not holes:
        yield first
        yield from it
        return
    start_ns = first.t0_ns
    seq = first.seq
    after_hole = False
    for frame in (first, *it):
        half = 0.5 / frame.rate_hz  # a sample at a hole's edge is judged by its centre: rounding slack
        rel = np.arange(frame.n_samples) / frame.rate_hz + (frame.t0_ns - start_ns) / 1e9
        keep = np.ones(frame.n_samples, dtype=bool)
        for a, b in holes:
            keep &= ~((rel >= a - half) & (rel < b - half))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
        runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
        for s, e in runs:
            if s > 0 or after_hole:
                seq += 1  # the pieces cut out took these sequence numbers
            piece = frame if (s, e) == (0, frame.n_samples) else _piece(frame, s, e)
            yield piece if piece.seq == seq else dataclasses.replace(piece, seq=seq)
            seq += 1
            after_hole = False
        if not keep.all() and (not runs or runs[-1][1] < frame.n_samples):
            after_hole = True


def _piece(frame: Frame, start: int, stop: int) -> Frame:
    """Samples ``start..stop-1`` of ``frame``; only a piece reaching the frame's end keeps its flags."""
    return dataclasses.replace(
        frame,
        t0_ns=frame.t0_ns + round(start * 1e9 / frame.rate_hz),
        data=frame.data[start:stop],
        flags=frame.flags if stop == frame.n_samples else 0,
    )
