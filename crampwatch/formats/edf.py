"""EDF, EDF+, BDF and BDF+ recordings: read with pyedflib, and :func:`write_edf`.

Suffixes ``.edf``, ``.bdf`` and ``.rec`` (old EDF name); the content decides EDF vs BDF and plain vs "+".

Which channels are EMG and ACC
------------------------------
``--emg LABEL ...`` / ``--acc X Y Z`` (the ``emg``/``acc`` arguments) name the channels and switch
auto-detection off for that stream. A named channel must exist (the error lists the labels in the file),
must carry a unit of the right kind (a voltage for EMG, an acceleration for ACC), and the named channels
must share one sample rate; ``--acc`` needs exactly three labels, given in x, y, z order. ``acc=()``
means "no ACC".

Without them, channels are picked by their physical dimension (the unit in the header):

* The EDF+/BDF+ annotation channel is never a signal.
* **EMG** = channels whose dimension is a voltage (``uV``, ``µV``, ``mV``, ``V``, ``nV``), except those
  whose label names another signal (ECG/EKG, EEG, EOG, ACC/accel). If any of them is labelled ``EMG``
  (any case), only the EMG-labelled ones are used, so a polysomnogram's EEG derivations (``C3-A2``) or
  respiration channels in µV are not mistaken for EMG.
* A channel labelled ``EMG`` whose dimension is missing or not a voltage is skipped with a warning: the
  file does not say whether it is in µV or mV, and a wrong guess scales it by 1000.
* **ACC** = channels whose dimension is an acceleration (``g``, ``mg``, ``m/s^2``); if some of them are
  labelled ``acc``/``accel``, only those. Exactly three axes are needed. With 1, 2 or more than 3 the
  recording is read **without ACC** (``acc=None``) and a warning says how to pick three with ``--acc``:
  padding missing axes or guessing which three of six belong together would feed the detector a wrong
  movement signal, and EMG alone is still usable. Axes whose labels end in x, y, z are put in that order.
* Channels of one stream must share one sample rate. If they do not, the channels with the highest rate
  are kept and the others dropped with a warning. EMG and ACC rates are independent (e.g. 1000 and 50 Hz).
* No EMG channel at all is an error that lists every channel with its unit and suggests ``--emg LABEL``.

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
from ..recording import Annotation, Recording, Signal
from ..units import ACC_UNIT, EMG_UNIT, factor, is_acc_unit, is_emg_unit
from .registry import check_finite, check_rate, register

__all__ = ["EdfFormat", "parse_annotation_text", "write_edf"]

log = logging.getLogger(__name__)

_ANNOTATION_LABELS: Final = frozenset({"edf annotations", "bdf annotations"})
_EMG_LABEL: Final = re.compile(r"emg", re.IGNORECASE)
_OTHER_SIGNAL_LABEL: Final = re.compile(r"ecg|ekg|eeg|eog|acc", re.IGNORECASE)
_ACC_LABEL: Final = re.compile(r"acc", re.IGNORECASE)
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


@dataclass(frozen=True, slots=True)
class _Channel:
    index: int
    label: str
    unit: str
    rate_hz: float
    n_samples: int

    def describe(self) -> str:
        return f"{self.label!r} ({self.unit or 'no unit'}, {self.rate_hz:g} Hz)"


# --------------------------------------------------------------------------------------------- reading


def _read(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
    where = str(path)
    with _open(path) as f:
        channels = [
            _Channel(
                i,
                f.getLabel(i).strip(),
                f.getPhysicalDimension(i).strip(),
                f.getSampleFrequency(i),
                f.samples_in_file(i),
            )
            for i in range(f.signals_in_file)
            if f.getLabel(i).strip().lower() not in _ANNOTATION_LABELS
        ]
        emg_channels = _detect_emg(where, channels) if emg is None else _named(where, channels, emg, StreamKind.EMG)
        if acc is None:
            acc_channels = _detect_acc(where, channels)
        else:
            acc_channels = _named(where, channels, acc, StreamKind.ACC) if acc else []
        emg_signal = _read_signal(where, f, StreamKind.EMG, emg_channels)
        acc_signal = _read_signal(where, f, StreamKind.ACC, acc_channels) if acc_channels else None
        annotations = _annotations(f)
        meta: dict[str, object] = {
            "format": _FILE_TYPES.get(f.filetype, "EDF"),
            "start": f.getStartdatetime(),
            "channels": tuple(f"{c.label} [{c.unit}]" for c in channels),
        }
    return Recording(emg_signal, acc_signal, annotations, source=where, meta=meta)


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


def _detect_emg(path: str, channels: Sequence[_Channel]) -> list[_Channel]:
    candidates = []
    for c in channels:
        if _OTHER_SIGNAL_LABEL.search(c.label):
            continue
        if is_emg_unit(c.unit):
            candidates.append(c)
        elif _EMG_LABEL.search(c.label):
            log.warning(
                "%s: channel %r looks like EMG but its physical dimension %r is not a voltage (uV, mV, V); "
                "skipped. Fix the dimension in the file header to use it",
                path,
                c.label,
                c.unit,
            )
    labelled = [c for c in candidates if _EMG_LABEL.search(c.label)]
    if labelled and len(labelled) < len(candidates):
        log.warning(
            "%s: using the channels labelled EMG (%s) and ignoring the other voltage channels (%s); "
            "name the channels with --emg to choose differently",
            path,
            ", ".join(c.label for c in labelled),
            ", ".join(c.label for c in candidates if c not in labelled),
        )
        candidates = labelled
    if not candidates:
        listing = ", ".join(c.describe() for c in channels) or "no signal channels"
        raise RecordingError(
            path,
            f"no EMG channel found. EMG is recognised by a voltage unit (uV, mV, V) or an 'EMG' label with "
            f"a voltage unit; the file has: {listing}. Name the EMG channel(s) with --emg LABEL",
        )
    candidates = _one_rate(path, StreamKind.EMG, candidates)
    check_rate(path, StreamKind.EMG, candidates[0].rate_hz, channel=candidates[0].label)
    return candidates


def _detect_acc(path: str, channels: Sequence[_Channel]) -> list[_Channel]:
    candidates = [c for c in channels if is_acc_unit(c.unit)]
    labelled = [c for c in candidates if _ACC_LABEL.search(c.label)]
    if labelled:
        candidates = labelled
    if not candidates:
        return []
    candidates = _one_rate(path, StreamKind.ACC, candidates)
    if len(candidates) != 3:
        log.warning(
            "%s: found %d acceleration channel(s) (%s) but need exactly 3 axes; reading without ACC. "
            "Name the x, y, z axes with --acc X Y Z",
            path,
            len(candidates),
            ", ".join(c.describe() for c in candidates),
        )
        return []
    check_rate(path, StreamKind.ACC, candidates[0].rate_hz, channel=candidates[0].label)
    axes = [c.label.lower()[-1:] for c in candidates]
    if sorted(axes) == ["x", "y", "z"]:
        candidates = sorted(candidates, key=lambda c: c.label.lower()[-1:])
    return candidates


def _one_rate(path: str, kind: StreamKind, channels: list[_Channel]) -> list[_Channel]:
    """Keep the channels with the highest sample rate, warning about the others."""
    top = max(c.rate_hz for c in channels)
    kept = [c for c in channels if c.rate_hz == top]
    if len(kept) < len(channels):
        log.warning(
            "%s: %s channels must share one sample rate; keeping %s at %g Hz, dropping %s",
            path,
            kind.value.upper(),
            ", ".join(repr(c.label) for c in kept),
            top,
            ", ".join(c.describe() for c in channels if c.rate_hz != top),
        )
    return kept


def _named(path: str, channels: Sequence[_Channel], labels: Sequence[str], kind: StreamKind) -> list[_Channel]:
    """The channels named by --emg/--acc, checked for existence, unit and a common rate."""
    flag = f"--{kind.value}"
    chosen = []
    for label in labels:
        matches = [c for c in channels if c.label == label.strip()]
        if not matches:
            matches = [c for c in channels if c.label.lower() == label.strip().lower()]
        if len(matches) != 1:
            listing = ", ".join(c.describe() for c in channels) or "no signal channels"
            problem = "no channel has this label" if not matches else f"{len(matches)} channels have this label"
            raise RecordingError(path, f"{flag}: {problem}; the file has: {listing}", channel=label)
        c = matches[0]
        if kind is StreamKind.EMG and not is_emg_unit(c.unit):
            raise RecordingError(
                path,
                f"{flag}: physical dimension {c.unit!r} is not a voltage (uV, mV, V), so this channel "
                "cannot be EMG; pick another channel or fix the dimension in the file header",
                channel=c.label,
            )
        if kind is StreamKind.ACC and not is_acc_unit(c.unit):
            raise RecordingError(
                path,
                f"{flag}: physical dimension {c.unit!r} is not an acceleration (g, mg, m/s^2); pick another "
                "channel or fix the dimension in the file header",
                channel=c.label,
            )
        check_rate(path, kind, c.rate_hz, channel=c.label)
        chosen.append(c)
    if len({c.rate_hz for c in chosen}) > 1:
        raise RecordingError(
            path,
            f"{flag}: the channels have different sample rates ({', '.join(c.describe() for c in chosen)}); "
            "name channels that share one rate",
        )
    if kind is StreamKind.ACC and len(chosen) != 3:
        raise RecordingError(path, f"{flag} needs exactly 3 labels (the x, y, z axes), got {len(chosen)}")
    return chosen


def _read_signal(path: str, f: pyedflib.EdfReader, kind: StreamKind, channels: Sequence[_Channel]) -> Signal:
    """Read ``channels`` (one shared rate) into a Signal in canonical units, chunk by chunk."""
    n = min(c.n_samples for c in channels)
    data = np.empty((n, len(channels)), dtype=np.float64)
    for j, c in enumerate(channels):
        scale = factor(kind, c.unit)
        for start in range(0, n, _CHUNK_SAMPLES):
            count = min(_CHUNK_SAMPLES, n - start)
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
            np.multiply(block, scale, out=data[start : start + count, j])
    return Signal(kind, channels[0].rate_hz, tuple(c.label for c in channels), data)


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
