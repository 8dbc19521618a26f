"""A recording held in memory: EMG and ACC signals in canonical units plus annotations.

This is what file readers (:mod:`crampwatch.formats`) and the simulator (:mod:`crampwatch.simulate`)
produce, and what the offline detector, replay and training consume. Live streams never become a
Recording; they stay as :class:`~crampwatch.frames.Frame` blocks.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .errors import RecordingError
from .frames import Channel, Frame, StreamKind
from .framing import FrameCutter, merge_by_end_time
from .units import ACC_UNIT, EMG_UNIT

#: Frames cut per push in :meth:`Signal.frames`.
_FRAMES_PER_PUSH = 256


@dataclass(frozen=True, slots=True)
class Annotation:
    """A labelled interval, in seconds from the recording start.

    ``type`` is an event type from ``shared/reference/events.md`` (``cramp``, ``spasm``, ``plm``) or a
    look-alike the simulator planted (``turn``, ``fasciculation``, ``pop`` ...); ``subtype`` refines it
    (for a spasm: ``tonic``, ``clonus``, ``flexor``, ``extensor``, ``myoclonic``).
    """

    type: str
    onset_s: float
    offset_s: float
    subtype: str = ""

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass(frozen=True, slots=True, eq=False)
class Signal:
    """Samples of one stream in canonical units: µV for EMG, g for ACC.

    ``data`` is ``(n_samples, n_channels)`` float64; ``t0_s`` is the time of the first sample relative to
    the recording start (non-zero when streams start at different device times).
    """

    kind: StreamKind
    rate_hz: float
    channel_names: tuple[str, ...]
    data: npt.NDArray[np.float64]
    t0_s: float = 0.0

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.channel_names):
            raise ValueError(f"{self.kind} data shape {self.data.shape} vs {len(self.channel_names)} names")
        if not self.rate_hz > 0:
            raise ValueError(f"{self.kind} sample rate must be positive, got {self.rate_hz}")

    @property
    def unit(self) -> str:
        return EMG_UNIT if self.kind is StreamKind.EMG else ACC_UNIT

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz

    def frames(
        self,
        frame_s: float = 0.1,
        *,
        resolution: float | None = None,
        start_ns: int = 0,
        first_seq: int = 0,
        end_of_stream: bool = True,
    ) -> Iterator[Frame]:
        """Cut the signal into wire frames of about ``frame_s`` seconds.

        With ``resolution`` (physical units per count) samples are quantised to int32 counts as an ADC
        would; without it they travel as float64, unchanged.
        """
        if resolution is not None:
            payload: npt.NDArray[np.int32] | npt.NDArray[np.float64] = np.round(self.data / resolution).astype(np.int32)
            scale = float(resolution)
        else:
            payload = self.data
            scale = 1.0
        cutter = _cutter(self, frame_s, scale, start_ns, first_seq)
        # Pushed in blocks of frames, so frames are views of the signal and a night is never in a list.
        block = cutter.n_per * _FRAMES_PER_PUSH
        for s in range(0, self.n_samples, block):
            yield from cutter.push(payload[s : s + block])
        yield from cutter.flush(end_of_stream=end_of_stream)


#: Reads ``count`` samples from sample ``start`` on: ``(count, n_channels)`` float64 in canonical units.
BlockReader = Callable[[int, int], npt.NDArray[np.float64]]


@dataclass(frozen=True, slots=True, eq=False)
class StreamedSignal:
    """A signal left in its file and read a block at a time, so that memory stays flat however long it is.

    The same description as :class:`Signal`, with ``read(start, count)`` in place of ``data``.
    :meth:`frames` cuts exactly the frames :meth:`Signal.frames` cuts from the same samples.
    """

    kind: StreamKind
    rate_hz: float
    channel_names: tuple[str, ...]
    n_samples: int
    read: BlockReader
    t0_s: float = 0.0

    @property
    def unit(self) -> str:
        return EMG_UNIT if self.kind is StreamKind.EMG else ACC_UNIT

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz

    def frames(
        self, frame_s: float = 0.1, *, start_ns: int = 0, first_seq: int = 0, end_of_stream: bool = True
    ) -> Iterator[Frame]:
        """Float64 wire frames of about ``frame_s`` seconds, reading about ``STREAM_BLOCK_S`` at a time."""
        cutter = _cutter(self, frame_s, 1.0, start_ns, first_seq)
        block = cutter.n_per * max(1, round(STREAM_BLOCK_S * self.rate_hz / cutter.n_per))
        for s in range(0, self.n_samples, block):
            yield from cutter.push(self.read(s, min(block, self.n_samples - s)))
        yield from cutter.flush(end_of_stream=end_of_stream)


#: Seconds of samples :meth:`StreamedSignal.frames` reads at once: few reads, and a few MB whatever the night.
STREAM_BLOCK_S = 120.0


def _cutter(
    signal: Signal | StreamedSignal, frame_s: float, scale: float, start_ns: int, first_seq: int
) -> FrameCutter:
    return FrameCutter(
        signal.kind,
        signal.rate_hz,
        tuple(Channel(name, signal.unit, scale) for name in signal.channel_names),
        frame_s=frame_s,
        start_ns=start_ns + round(signal.t0_s * 1e9),
        first_seq=first_seq,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """EMG (required), ACC (optional) and annotations of one recording."""

    emg: Signal
    acc: Signal | None = None
    annotations: tuple[Annotation, ...] = ()
    source: str = ""
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.emg.t0_s + self.emg.duration_s

    def frames(self, frame_s: float, *, start_ns: int = 0) -> Iterator[Frame]:
        """EMG and ACC frames (float64, end of stream on each) in the order a device sends them.

        Samples under ``gap`` annotations (the filler ``cramp-collector record`` writes for lost frames)
        are not sent: the device never sent them either, so replay and offline detection meet the same
        hole the live service met (:func:`crampwatch.continuity.drop_annotated_gaps`).
        """
        return _device_frames(self.emg, self.acc, self.annotations, frame_s, start_ns)

    # A context manager like StreamedRecording, so `with open_recording(path) as rec:` fits both.
    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass(frozen=True, slots=True, eq=False)
class StreamedRecording:
    """A :class:`Recording` whose signals stay in the file until :meth:`frames` reads them, block by block.

    What ``detect`` runs on, so an 8-hour night needs a few MB of samples in memory instead of all of
    them (:func:`crampwatch.formats.open_recording`). Use it as a context manager: it closes the file.
    """

    emg: StreamedSignal
    acc: StreamedSignal | None = None
    annotations: tuple[Annotation, ...] = ()
    source: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None

    @property
    def duration_s(self) -> float:
        return self.emg.t0_s + self.emg.duration_s

    def frames(self, frame_s: float, *, start_ns: int = 0) -> Iterator[Frame]:
        """The frames :meth:`Recording.frames` gives for the same samples, read from the file as they go."""
        return _device_frames(self.emg, self.acc, self.annotations, frame_s, start_ns)

    def __enter__(self) -> StreamedRecording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _device_frames(
    emg: Signal | StreamedSignal,
    acc: Signal | StreamedSignal | None,
    annotations: tuple[Annotation, ...],
    frame_s: float,
    start_ns: int,
) -> Iterator[Frame]:
    from .continuity import drop_annotated_gaps  # continuity imports this module's Annotation

    streams = [drop_annotated_gaps(emg.frames(frame_s, start_ns=start_ns), annotations, emg.t0_s)]
    if acc is not None:
        streams.append(drop_annotated_gaps(acc.frames(frame_s, start_ns=start_ns), annotations, acc.t0_s))
    for _, frame in merge_by_end_time(streams):
        yield frame


ANNOTATION_FIELDS = ("type", "onset_s", "offset_s", "subtype")


def write_annotations(path: str | Path, annotations: Iterable[Annotation]) -> None:
    """Write ``type,onset_s,offset_s,subtype`` CSV, sorted by onset."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(ANNOTATION_FIELDS)
        for a in sorted(annotations, key=lambda a: (a.onset_s, a.type)):
            writer.writerow([a.type, f"{a.onset_s:.3f}", f"{a.offset_s:.3f}", a.subtype])


def read_annotations(path: str | Path) -> list[Annotation]:
    """Read a CSV with at least ``type,onset_s,offset_s`` columns (extra columns are ignored)."""
    p = str(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise RecordingError(p, f"cannot read annotation file ({err.strerror})") from None
    except (UnicodeDecodeError, csv.Error):  # e.g. an EDF given where the events CSV belongs
        raise RecordingError(
            p, "not a CSV text file; give a CSV with columns type,onset_s,offset_s[,subtype] (as detect writes)"
        ) from None
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            onset, offset = float(row["onset_s"]), float(row["offset_s"])
            kind = row["type"].strip()
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RecordingError(
                p, f"line {line}: need columns type,onset_s,offset_s with numeric times, got {row}"
            ) from None
        if not offset >= onset:
            raise RecordingError(p, f"line {line}: offset_s {offset} is before onset_s {onset}")
        out.append(Annotation(kind, onset, offset, (row.get("subtype") or "").strip()))
    return out
