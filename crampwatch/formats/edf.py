"""EDF, EDF+, BDF and BDF+ recordings: read with pyedflib, and :func:`write_edf`.

Suffixes ``.edf``, ``.bdf`` and ``.rec`` (old EDF name); the content decides EDF vs BDF and plain vs "+".

Which channels are EMG and ACC
------------------------------
The EDF+/BDF+ annotation channels are never signals. The other channels go, with the header's label,
physical dimension, sample rate, transducer and prefilter fields, to the channel choice shared by every
reader, :func:`crampwatch.formats.columns.pick_channels` (its module docstring states the rules): channels
that are not raw EMG (EEG by label or by 10-20 electrode names, EOG, ECG, SaO2/pleth, respiration,
position, light, DC inputs, temperature, event markers, envelopes such as Sleep-EDF's 1 Hz "EMG
submental") are skipped with a one-line log note, leg EMG (tibialis, TA, LAT/RAT, gastrocnemius, calf,
leg) is preferred, and ``--emg``/``--acc`` (the ``emg``/``acc`` arguments) are the final word.
``acc=()`` means "no ACC". A file without any raw EMG channel is an error listing every channel with
why it was not used. EDF+D/BDF+D (discontinuous) files are rejected with one line saying to export
them as continuous EDF+C/BDF+C.

Values are converted to µV (EMG) and g (ACC) from each channel's own dimension. Sample rates must be
plausible (EMG 50..20000 Hz, ACC 1..5000 Hz). Data are read channel by channel, in chunks, so an 8 h
recording needs little more memory than its float64 result.

Annotations
-----------
EDF+/BDF+ annotations become :class:`~crampwatch.recording.Annotation`; the text gives type and subtype
(see :func:`parse_annotation_text`); an annotation without duration has ``offset_s == onset_s``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyedflib

from ..errors import RecordingError
from ..frames import StreamKind
from ..recording import Annotation, Recording, Signal, StreamedRecording, StreamedSignal
from ..units import ACC_UNIT, EMG_UNIT, factor
from .columns import Column, pick_channels
from .registry import check_finite, register

__all__ = ["EdfFormat", "parse_annotation_text", "write_edf"]

log = logging.getLogger(__name__)

_ANNOTATION_LABELS: Final = frozenset({"edf annotations", "bdf annotations"})
_TYPE_SUBTYPE: Final = re.compile(r"(?P<type>[^:/]+?) ?[:/] ?(?P<subtype>.*)")
#: Event types that may be followed by a subtype after a space ("spasm clonus").
_KNOWN_TYPES: Final = frozenset({"cramp", "spasm", "plm", "fasciculation", "precursor"})
_FILE_TYPES: Final = {
    pyedflib.FILETYPE_EDF: "EDF",
    pyedflib.FILETYPE_EDFPLUS: "EDF+",
    pyedflib.FILETYPE_BDF: "BDF",
    pyedflib.FILETYPE_BDFPLUS: "BDF+",
}
_EDF_MAGIC: Final = b"0       "
_BDF_MAGIC: Final = b"\xffBIOSEMI"
_FIXED_HEADER_BYTES: Final = 256
#: The signal headers that follow are field by field for all signals: label 16, transducer 80, dimension 8,
#: physical/digital min/max 4 x 8 and prefilter 80 bytes per signal, then 8 for samples per data record.
_SAMPLES_FIELD_OFFSET: Final = 216
#: A header field is 4 characters ("9999"); more signals than that cannot be written down.
_MAX_SIGNALS: Final = 9999
#: Samples read from pyedflib at once; bounds the temporary buffer (8 MB) for long recordings.
_CHUNK_SAMPLES: Final = 1 << 20
#: Digital ranges used by write_edf: symmetric, so 0 µV is exactly digital 0.
_EDF_DIGITAL_MAX: Final = 32767
_BDF_DIGITAL_MAX: Final = 8388607


@register
class EdfFormat:
    """EDF/EDF+/BDF/BDF+ through pyedflib; see the module docstring for the detection rules."""

    name = "edf"
    suffixes = (".edf", ".bdf", ".rec")

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        return _read(path, emg=emg, acc=acc)

    def open(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> StreamedRecording:
        """The recording with its samples left in the file, read block by block (``detect``)."""
        return _open_streamed(path, emg=emg, acc=acc)


# --------------------------------------------------------------------------------------------- reading


def _read(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
    where = str(path)
    with _open(path) as f:
        emg_channels, acc_channels, annotations, meta = _describe(where, f, emg=emg, acc=acc)
        emg_signal = _read_signal(where, f, StreamKind.EMG, emg_channels)
        acc_signal = _read_signal(where, f, StreamKind.ACC, acc_channels) if acc_channels else None
    return Recording(emg_signal, acc_signal, annotations, source=where, meta=meta)


def _open_streamed(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> StreamedRecording:
    where = str(path)
    f = _open(path)
    try:
        emg_channels, acc_channels, annotations, meta = _describe(where, f, emg=emg, acc=acc)
    except BaseException:
        f.close()
        raise
    emg_signal = _streamed_signal(where, f, StreamKind.EMG, emg_channels)
    acc_signal = _streamed_signal(where, f, StreamKind.ACC, acc_channels) if acc_channels else None
    return StreamedRecording(emg_signal, acc_signal, annotations, source=where, meta=meta, close=f.close)


def _describe(
    where: str, f: pyedflib.EdfReader, *, emg: Sequence[str] | None, acc: Sequence[str] | None
) -> tuple[list[Column], list[Column], tuple[Annotation, ...], dict[str, object]]:
    """The EMG and ACC channels to use, the annotations and the meta data of an open file."""
    # The header's transducer and prefilter say what a channel is when its label does not
    # ("Ag-AgCl electrodes" vs "thermistor"; "HP:16Hz Rectification LP:0.7Hz" is an envelope).
    channels = [
        Column(
            i,
            f.getLabel(i).strip(),
            f.getPhysicalDimension(i).strip(),
            f.getSampleFrequency(i),
            transducer=f.getTransducer(i).strip(),
            prefilter=f.getPrefilter(i).strip(),
        )
        for i in range(f.signals_in_file)
        if f.getLabel(i).strip().lower() not in _ANNOTATION_LABELS
    ]
    emg_channels, acc_channels = pick_channels(where, channels, emg=emg, acc=acc)
    meta: dict[str, object] = {
        "format": _FILE_TYPES.get(f.filetype, "EDF"),
        "start": f.getStartdatetime(),
        "channels": tuple(f"{c.label} [{c.unit}]" for c in channels),
    }
    return list(emg_channels), list(acc_channels), _annotations(f), meta


def _open(path: Path) -> pyedflib.EdfReader:
    try:
        return pyedflib.EdfReader(
            str(path),
            annotations_mode=pyedflib.READ_ALL_ANNOTATIONS,
            check_file_size=pyedflib.CHECK_FILE_SIZE,
        )
    except OSError as err:
        detail = str(err).removeprefix(f"{path}: ")
        raise RecordingError(str(path), f"{_explain_open_error(path, detail)} [pyedflib: {detail}]") from None


def _explain_open_error(path: Path, detail: str) -> str:
    """Turn pyedflib's open error into what is wrong with the file and what to do about it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_FIXED_HEADER_BYTES)
    except OSError as err:
        return f"cannot read the file ({err.strerror}); check its permissions"
    if not head:
        return "the file is empty (0 bytes); copy it again from the source"
    if not head.startswith((_EDF_MAGIC, _BDF_MAGIC)):
        return (
            f"not an EDF/BDF file: it starts with {head[:8]!r} instead of b'0       ' (EDF) or "
            "b'\\xffBIOSEMI' (BDF); if it is another format, convert it or pass --format"
        )
    if len(head) < _FIXED_HEADER_BYTES:
        return (
            f"the file is only {len(head)} bytes, shorter than the {_FIXED_HEADER_BYTES}-byte EDF/BDF "
            "header: it was cut off while being written or copied; copy it again from the source"
        )
    size_problem = _size_problem(path, head)
    if size_problem:
        return size_problem
    if "discontinuous" in detail:
        return (
            "EDF+D/BDF+D (discontinuous) recordings are not supported; export the recording as continuous "
            "EDF+C/BDF+C, one file per uninterrupted segment"
        )
    return (
        "the EDF/BDF header has format errors (see pyedflib's reason); open the file in an EDF viewer "
        "(e.g. EDFbrowser) to locate the bad field, or export the recording again"
    )


def _size_problem(path: Path, head: bytes) -> str | None:
    """Compare the file size with what the header announces; None if they agree or it cannot tell."""
    try:
        header_bytes = int(head[184:192])
        n_records = int(head[236:244])
        record_s = float(head[244:252])
        n_signals = int(head[252:256])
    except ValueError:
        return None
    if not 1 <= n_signals <= _MAX_SIGNALS or header_bytes != _FIXED_HEADER_BYTES * (n_signals + 1):
        # Checked before n_signals sizes any read or seek below (a negative count made a negative seek).
        return (
            f"the header is corrupt: it announces {n_signals} signal(s) and a {header_bytes}-byte header, but an "
            f"EDF/BDF file has 1..{_MAX_SIGNALS} signals and a header of 256 x (signals + 1) bytes; export the "
            "recording again"
        )
    size = path.stat().st_size
    if size < header_bytes:
        return (
            f"the header is truncated: it should be {header_bytes} bytes but the file has only {size}; "
            "the file was cut off while being written or copied, copy it again from the source"
        )
    with open(path, "rb") as fh:
        fh.seek(_FIXED_HEADER_BYTES + n_signals * _SAMPLES_FIELD_OFFSET)
        fields = fh.read(8 * n_signals)
    try:
        samples_per_record = [int(fields[8 * i : 8 * i + 8]) for i in range(n_signals)]
    except ValueError:
        return None
    if min(samples_per_record) < 1:
        return (
            f"the header is corrupt: samples per data record {samples_per_record} must be at least 1 for every "
            "signal; export the recording again"
        )
    record_bytes = sum(samples_per_record) * (3 if head.startswith(_BDF_MAGIC) else 2)
    if n_records < 0:
        return (
            "the header says the number of data records is unknown (-1): the recording was not closed "
            "properly; let the recorder finish the file, or set the record count in the header"
        )
    expected = header_bytes + n_records * record_bytes
    if size < expected and record_bytes:
        complete = (size - header_bytes) // record_bytes
        return (
            f"the file is truncated: the header announces {n_records} data records of {record_s:g} s "
            f"({expected} bytes) but the file has {size} bytes, i.e. {complete} complete record(s); it was "
            "cut off while being written or copied. Copy it again from the source, or, if this is the only "
            f"copy, set the number of data records in the header to {complete} to read the complete part"
        )
    return None


def _read_signal(path: str, f: pyedflib.EdfReader, kind: StreamKind, channels: Sequence[Column]) -> Signal:
    """Read ``channels`` (one shared rate) into a Signal in canonical units, chunk by chunk."""
    n = min(f.samples_in_file(c.index) for c in channels)
    data = np.empty((n, len(channels)), dtype=np.float64)
    for start in range(0, n, _CHUNK_SAMPLES):
        count = min(_CHUNK_SAMPLES, n - start)
        _read_block(path, f, kind, channels, start, count, out=data[start : start + count])
    return Signal(kind, channels[0].rate_hz, tuple(c.label for c in channels), data)


def _streamed_signal(path: str, f: pyedflib.EdfReader, kind: StreamKind, channels: Sequence[Column]) -> StreamedSignal:
    """``channels`` (one shared rate) as a signal read from ``f`` block by block, in canonical units."""
    n = min(f.samples_in_file(c.index) for c in channels)
    records = _RecordReader.open(path, f, kind, channels)

    def read(start: int, count: int) -> npt.NDArray[np.float64]:
        out = np.empty((count, len(channels)), dtype=np.float64)
        if records is not None:
            records.read(start, count, out=out)
        else:
            _read_block(path, f, kind, channels, start, count, out=out)
        return out

    return StreamedSignal(kind, channels[0].rate_hz, tuple(c.label for c in channels), n, read)


@dataclass(frozen=True, slots=True, eq=False)
class _RecordReader:
    """Samples of some channels of one rate straight from the data records, with numpy.

    Why: pyedflib reads a block sample by sample per channel, 0.1 s of CPU per hour of 1 kHz EMG (0.8 s of
    an 8-h ``detect``); numpy decodes the same records about ten times faster. The values are pyedflib's
    bit for bit: the same digital counts, and edflib's own arithmetic, ``bitvalue * (offset + digital)``
    with ``bitvalue = (phys_max - phys_min) / (dig_max - dig_min)`` and ``offset = phys_max / bitvalue -
    dig_max``, from the header values pyedflib parsed. :meth:`open` checks that on the file's first
    samples and returns None (read through pyedflib) when the layout or any value differs.
    """

    path: str
    header_bytes: int
    record_bytes: int
    width: int  # bytes per sample: 2 (EDF) or 3 (BDF)
    per_record: int  # samples per record of each of these channels
    offsets: tuple[int, ...]  # byte offset of each channel inside a record
    bitvalue: npt.NDArray[np.float64]
    offset: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]  # to µV or g

    @classmethod
    def open(
        cls, path: str, f: pyedflib.EdfReader, kind: StreamKind, channels: Sequence[Column]
    ) -> _RecordReader | None:
        try:
            reader = cls._from_header(path, f, kind, channels)
        except (OSError, ValueError):
            return None
        if reader is None:
            return None
        # The proof, on this file: its first samples equal pyedflib's.
        n = min(256, *(f.samples_in_file(c.index) for c in channels))
        ours = np.empty((n, len(channels)))
        theirs = np.empty((n, len(channels)))
        try:
            reader.read(0, n, out=ours)
        except (OSError, ValueError):
            return None
        _read_block(path, f, kind, channels, 0, n, out=theirs)
        return reader if np.array_equal(ours, theirs) else None

    @classmethod
    def _from_header(
        cls, path: str, f: pyedflib.EdfReader, kind: StreamKind, channels: Sequence[Column]
    ) -> _RecordReader | None:
        with open(path, "rb") as fh:
            head = fh.read(_FIXED_HEADER_BYTES)
            n_signals = int(head[252:256])
            labels = fh.read(16 * n_signals)
            fh.seek(_FIXED_HEADER_BYTES + n_signals * _SAMPLES_FIELD_OFFSET)
            fields = fh.read(8 * n_signals)
        width = 3 if head.startswith(_BDF_MAGIC) else 2
        per_record = [int(fields[8 * i : 8 * i + 8]) for i in range(n_signals)]
        names = [labels[16 * i : 16 * i + 16].decode("latin-1").strip() for i in range(n_signals)]
        # pyedflib numbers the signals without the annotation channels.
        data_signals = [i for i in range(n_signals) if names[i].lower() not in _ANNOTATION_LABELS]
        if len(data_signals) != f.signals_in_file:
            return None
        raw = [data_signals[c.index] for c in channels]
        spr = {per_record[i] for i in raw}
        if len(spr) != 1 or any(names[i] != f.getLabel(c.index).strip() for i, c in zip(raw, channels, strict=True)):
            return None
        phys_max = np.array([f.getPhysicalMaximum(c.index) for c in channels], dtype=np.float64)
        phys_min = np.array([f.getPhysicalMinimum(c.index) for c in channels], dtype=np.float64)
        dig_max = np.array([f.getDigitalMaximum(c.index) for c in channels], dtype=np.float64)
        dig_min = np.array([f.getDigitalMinimum(c.index) for c in channels], dtype=np.float64)
        bitvalue = (phys_max - phys_min) / (dig_max - dig_min)
        return cls(
            path,
            int(head[184:192]),
            sum(per_record) * width,
            width,
            spr.pop(),
            tuple(sum(per_record[:i]) * width for i in raw),
            bitvalue,
            phys_max / bitvalue - dig_max,
            np.array([factor(kind, c.unit) for c in channels], dtype=np.float64),
        )

    def read(self, start: int, count: int, *, out: npt.NDArray[np.float64]) -> None:
        """Samples ``start..start+count-1`` of every channel into ``out`` ``(count, channels)``."""
        first, last = start // self.per_record, (start + count - 1) // self.per_record
        n_records = last - first + 1
        with open(self.path, "rb") as fh:
            fh.seek(self.header_bytes + first * self.record_bytes)
            buf = fh.read(n_records * self.record_bytes)
        if len(buf) != n_records * self.record_bytes:
            raise RecordingError(self.path, f"got fewer data records than the header announces from record {first}")
        skip = start - first * self.per_record
        if self.width == 2:
            counts = np.frombuffer(buf, dtype="<i2").reshape(n_records, -1)
        else:
            records = np.frombuffer(buf, dtype=np.uint8).reshape(n_records, -1, 3).astype(np.int32)
            counts = records[:, :, 0] | (records[:, :, 1] << 8) | (records[:, :, 2] << 16)
            counts = np.where(counts >= 1 << 23, counts - (1 << 24), counts)
        for j, at in enumerate(self.offsets):
            at //= self.width
            digital = counts[:, at : at + self.per_record].reshape(-1)[skip : skip + count].astype(np.float64)
            # edflib's arithmetic, bitvalue * (offset + digital); then the unit factor, as _read_block has it.
            digital += self.offset[j]
            digital *= self.bitvalue[j]
            np.multiply(digital, self.scale[j], out=out[:, j])


def _read_block(
    path: str,
    f: pyedflib.EdfReader,
    kind: StreamKind,
    channels: Sequence[Column],
    start: int,
    count: int,
    *,
    out: npt.NDArray[np.float64],
) -> None:
    """Samples ``start..start+count-1`` of ``channels`` into ``out`` ``(count, channels)``, in canonical units."""
    for j, c in enumerate(channels):
        try:
            block = f.readSignal(c.index, start, count)
        except OSError as err:
            raise RecordingError(
                path,
                f"cannot read samples {start}..{start + count} ({err}); the data records are damaged",
                channel=c.label,
            ) from None
        if block.shape != (count,):
            raise RecordingError(
                path,
                f"got {block.size} of {count} samples from sample {start}: the data is truncated",
                channel=c.label,
            )
        np.multiply(block, factor(kind, c.unit), out=out[:, j])


def _annotations(f: pyedflib.EdfReader) -> tuple[Annotation, ...]:
    onsets, durations, texts = f.readAnnotations()
    out = []
    for onset, duration, text in zip(onsets.tolist(), durations.tolist(), texts.tolist(), strict=True):
        kind, subtype = parse_annotation_text(str(text))
        if kind:
            offset = onset + duration if duration > 0 else onset
            out.append(Annotation(kind, float(onset), float(offset), subtype))
    return tuple(out)


def parse_annotation_text(text: str) -> tuple[str, str]:
    """Split an annotation text into ``(type, subtype)``, lower-cased.

    ``"Cramp"`` -> ``("cramp", "")``; ``"spasm:clonus"``, ``"spasm/clonus"`` and, for known event types,
    ``"spasm clonus"`` -> ``("spasm", "clonus")``. Other texts are kept whole as their own type
    (``"Lights off"`` -> ``("lights off", "")``). Blank text -> ``("", "")``.
    """
    t = " ".join(text.lower().split())
    explicit = _TYPE_SUBTYPE.fullmatch(t)
    if explicit:
        return explicit["type"], explicit["subtype"]
    head, _, tail = t.partition(" ")
    if tail and head in _KNOWN_TYPES:
        return head, tail
    return t, ""


# --------------------------------------------------------------------------------------------- writing


def write_edf(recording: Recording, path: str | os.PathLike[str], *, bdf: bool | None = None) -> None:
    """Write ``recording`` as EDF+ (16 bit) or BDF+ (24 bit), with its annotations.

    ``bdf=None`` decides by the suffix (``.edf`` or ``.bdf``). EMG is written in uV and ACC in g, each
    channel at its stream's rate. Each channel's physical range is symmetric, ±(its peak rounded up to a
    short number), with digital range ±32767 (EDF) or ±8388607 (BDF), so a value round-trips within half
    a digital step (peak / 32767 / 2 in EDF). Samples are rounded, not truncated.

    EDF stores whole data records (1 s for integer rates): the last partial record of each channel is
    filled with the channel's last value, and a stream with ``t0_s > 0`` is preceded by its first value,
    so both streams start at the recording start. Annotations are written as ``type`` or
    ``type:subtype``; zero-length ones without a duration; negative onsets cannot be stored and are
    skipped with a warning. A partly written file is removed on error.
    """
    p = Path(path)
    where = str(p)
    if bdf is None:
        if p.suffix.lower() not in (".edf", ".bdf"):
            raise RecordingError(
                where, "cannot tell EDF from BDF by the suffix; name the file .edf or .bdf, or pass bdf="
            )
        bdf = p.suffix.lower() == ".bdf"
    digital_max = _BDF_DIGITAL_MAX if bdf else _EDF_DIGITAL_MAX
    channels = _out_channels(where, recording, digital_max)
    file_type = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    try:
        writer = pyedflib.EdfWriter(where, len(channels), file_type=file_type)
    except OSError as err:
        raise RecordingError(where, f"cannot create the file ({err})") from None
    try:
        with writer:
            _fill(where, writer, recording, channels, digital_max)
    except BaseException:
        p.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True, eq=False)
class _OutChannel:
    header: dict[str, str | int | float | None]
    column: npt.NDArray[np.float64]
    limit: float


def _out_channels(where: str, recording: Recording, digital_max: int) -> list[_OutChannel]:
    """Validate the recording and lay out one EDF signal per channel (EMG first, then ACC)."""
    signals = [recording.emg] if recording.acc is None else [recording.emg, recording.acc]
    out = []
    for signal in signals:
        check_finite(where, signal)
        lead = round(signal.t0_s * signal.rate_hz)
        if lead < 0 or signal.n_samples == 0:
            raise RecordingError(
                where, f"the {signal.kind.value.upper()} stream has no samples or starts before the recording"
            )
        for j, name in enumerate(signal.channel_names):
            column = signal.data[:, j]
            if lead:
                column = np.concatenate([np.full(lead, column[0]), column])
            limit = _physical_limit(where, name, max(float(column.max()), -float(column.min())))
            header: dict[str, str | int | float | None] = {
                "label": _edf_label(where, name),
                "dimension": EMG_UNIT if signal.kind is StreamKind.EMG else ACC_UNIT,
                "sample_frequency": signal.rate_hz,
                "physical_max": limit,
                "physical_min": -limit,
                "digital_max": digital_max,
                "digital_min": -digital_max,
                "prefilter": "",
                "transducer": "",
            }
            out.append(_OutChannel(header, column, float(limit)))
    labels = [c.header["label"] for c in out]
    if len(set(labels)) != len(labels):
        raise RecordingError(where, f"channel labels must be unique in an EDF file, got {labels}")
    return out


def _fill(
    where: str,
    writer: pyedflib.EdfWriter,
    recording: Recording,
    channels: Sequence[_OutChannel],
    digital_max: int,
) -> None:
    """Write headers, data records (rounded to digital values) and annotations."""
    start = recording.meta.get("start")
    if isinstance(start, datetime):
        writer.recording_start_time = start
    try:
        writer.setSignalHeaders([c.header for c in channels])
    except ValueError as err:  # no record duration <= 60 s fits every rate, or a header field is bad
        raise RecordingError(where, f"cannot store these channels in EDF: {err}") from None
    per_record = [writer.get_smp_per_record(i) for i in range(len(channels))]
    scale = np.repeat([digital_max / c.limit for c in channels], per_record)
    n_records = max(math.ceil(len(c.column) / spr) for c, spr in zip(channels, per_record, strict=True))
    for r in range(n_records):
        physical = np.concatenate(
            [_record(c.column, r * spr, spr) for c, spr in zip(channels, per_record, strict=True)]
        )
        digital = np.clip(np.rint(physical * scale), -digital_max, digital_max).astype(np.int32)
        if writer.blockWriteDigitalSamples(digital) < 0:
            raise RecordingError(where, f"write error in data record {r} (disk full?)")
    for a in sorted(recording.annotations, key=lambda a: a.onset_s):
        if a.onset_s < 0:
            log.warning("%s: annotation %r is before the recording start; EDF+ cannot store it", where, a)
            continue
        text = f"{a.type}:{a.subtype}" if a.subtype else a.type
        if writer.writeAnnotation(a.onset_s, a.duration_s if a.duration_s > 0 else -1, text) < 0:
            raise RecordingError(where, f"cannot write annotation {text!r} at {a.onset_s:.3f} s")


def _record(column: npt.NDArray[np.float64], start: int, n: int) -> npt.NDArray[np.float64]:
    """``n`` samples from ``start``, padded with the last value past the end of the column."""
    chunk = column[start : start + n]
    if len(chunk) == n:
        return chunk
    return np.concatenate([chunk, np.full(n - len(chunk), column[-1])])


def _edf_label(path: str, name: str) -> str:
    label = name.strip()
    if not (label and label.isascii() and label.isprintable() and len(label) <= 16):
        raise RecordingError(
            path,
            "EDF channel labels must be 1..16 printable ASCII characters; rename the channel",
            channel=name,
        )
    return label


def _physical_limit(path: str, channel: str, peak: float) -> int | float:
    """A short number >= ``peak`` for the symmetric physical range.

    EDF header fields are 8 characters, so ``-limit`` must fit in 8: three significant digits, at least
    0.001, at most 9999999 (10 V in µV).
    """
    if not peak > 1e-3:
        return 1e-3
    decimals = min(5, max(0, 2 - math.floor(math.log10(peak))))
    q = 10**decimals
    value = math.ceil(peak * q) / q
    text = f"{value:.{decimals}f}"
    if len(text) > 7:
        raise RecordingError(
            path, f"peak value {peak:g} is too large for an EDF header (at most 9999999)", channel=channel
        )
    return int(text) if decimals == 0 else float(text)
