"""XDF recordings (Lab Streaming Layer, e.g. from LabRecorder), read with pyxdf.

An XDF file holds several LSL streams, each with its own rate and clock; pyxdf aligns the clocks. This
reader turns them into one :class:`~crampwatch.recording.Recording`:

* **Which streams.** Every numeric stream's channels become candidates, described by the channel
  meta-data in the stream header (``desc/channels/channel/{label,unit,type}``, the XDF/LSL meta-data
  convention). EMG and ACC are then picked by unit as for every format (:mod:`crampwatch.formats.columns`):
  voltage -> EMG (``microvolts`` as LSL writes it, ``uV``, ``mV`` ...), acceleration -> ACC (``g``,
  ``m/s^2``). Channels of a stream whose header has no per-channel units take the stream's type: a stream
  of type ``EMG`` without units is an error (the unit is unknown, µV vs mV is a factor 1000); a stream of
  type ``ACC``/``Accelerometer`` without units is skipped with a warning. The EMG channels must come from
  one stream, and so must the three ACC axes; EMG and ACC may have different rates.
* **Times.** The recording starts at the first EMG sample. ACC samples from before it are dropped, and
  ``acc.t0_s`` is the time of the first remaining one, so a stream that started later keeps its offset.
  Samples are taken at the stream's nominal rate; time stamps are only used for each stream's start.
  If a stream has breaks (pyxdf's segments) or its effective rate differs from the nominal one by more
  than 1 %, a warning says so: later samples are then misplaced in time.
* **Markers.** String streams (LSL markers) become annotations (zero duration, text parsed as in EDF:
  ``"cramp"``, ``"spasm:clonus"``).
* **Damage.** pyxdf skips damaged chunks and only logs them; here any such report, a stream without its
  footer (the recording was cut off), or a footer whose sample count differs from the samples read, is a
  :class:`~crampwatch.errors.RecordingError` naming the stream. An irregular-rate (0 Hz) or implausible
  rate is an error when that stream is the one chosen.
* **Structure first.** Before pyxdf sees the file, :func:`_check_structure` walks its chunks without
  reading the samples: every chunk length must fit in what is left of the file, every sample chunk must
  hold at least the bytes its sample count needs, and the XML headers must parse, declare no DOCTYPE or
  ENTITY (entity expansion, "billion laughs"), and give a finite, non-negative rate, a channel count of
  1..:data:`MAX_CHANNELS` and a known sample format. pyxdf allocates what a chunk announces and skips
  damage it cannot parse, so a file it is handed can no longer make it allocate more than a few times the
  file's size, nor expand entities.

pyxdf parses samples one by one in Python (about 1-2 million samples per second), so a whole night at
2 kHz takes a minute to read.
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final
from xml.etree.ElementTree import ParseError, fromstring
from xml.parsers import expat

import numpy as np
import numpy.typing as npt

from ..errors import RecordingError
from ..frames import StreamKind
from ..recording import Annotation, Recording, Signal
from .columns import Column, factor, pick_channels
from .edf import parse_annotation_text
from .registry import register

__all__ = ["XdfFormat"]

log = logging.getLogger(__name__)

_ACC_TYPES: Final = frozenset({"acc", "accelerometer", "accelerometry", "acceleration"})
_EMG_TYPES: Final = frozenset({"emg"})
_RATE_TOLERANCE: Final = 0.01
_MAGIC: Final = b"XDF:"
#: Column.index = stream number x _PER_STREAM + channel number.
_PER_STREAM: Final = 1 << 16
#: More channels than this in one stream is a broken header (LSL amplifiers have at most a few hundred).
MAX_CHANNELS: Final = 4096
#: An XML header chunk larger than this is not a header (LabRecorder's are a few kB).
_MAX_XML_BYTES: Final = 16 << 20
#: Bytes of one value per channel format; "string" values are at least a length byte and one character.
_FORMAT_BYTES: Final = {"double64": 8, "float32": 4, "int64": 8, "int32": 4, "int16": 2, "int8": 1, "string": 2}
_XML_TAGS: Final = frozenset({1, 2, 6})
_STREAM_TAGS: Final = frozenset({2, 3, 4, 6})
_CLOCK_OFFSET_BYTES: Final = 2 + 4 + 16


@register
class XdfFormat:
    """XDF through pyxdf; see the module docstring."""

    name = "xdf"
    suffixes = (".xdf", ".xdfz")

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        return _read(path, emg=emg, acc=acc)


@dataclass(frozen=True, slots=True, eq=False)
class _Stream:
    name: str
    type: str
    rate_hz: float
    labels: tuple[str, ...]
    units: tuple[str, ...]
    values: npt.NDArray[Any]
    stamps: npt.NDArray[np.float64]


class _Problems(logging.Handler):
    """Collects what pyxdf logs at ERROR level while it reads (it does not raise for damaged chunks)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _pyxdf_problems() -> Iterator[_Problems]:
    logger = logging.getLogger("pyxdf")
    handler = _Problems()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _read(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
    import pyxdf  # type: ignore[import-untyped]  # heavy import, only when an XDF file is read

    where = str(path)
    _check_magic(where, path)
    _check_structure(where, path)
    with _pyxdf_problems() as problems:
        try:
            raw_streams, _ = pyxdf.load_xdf(str(path))
        except (OSError, ValueError, RuntimeError, EOFError, KeyError, IndexError, struct.error, ParseError) as err:
            raise RecordingError(where, f"not a readable XDF file ({err}); check that it is a complete .xdf") from None
    if problems.messages:
        raise RecordingError(
            where,
            f"the file is damaged or truncated: pyxdf reported {problems.messages[0]!r}"
            + (f" and {len(problems.messages) - 1} more problem(s)" if len(problems.messages) > 1 else "")
            + "; copy it again from the source",
        )
    numeric: list[_Stream] = []
    markers: list[dict[str, Any]] = []
    for raw in raw_streams:
        info = raw["info"]
        name = _text(info, "name") or f"stream {info.get('stream_id')}"
        _check_footer(where, name, raw)
        if _text(info, "channel_format") == "string":
            markers.append(raw)
            continue
        stream = _stream(where, name, raw)
        if stream is not None:
            numeric.append(stream)
    columns = [
        Column(i * _PER_STREAM + j, label, unit, s.rate_hz, group=f"stream {s.name!r}")
        for i, s in enumerate(numeric)
        for j, (label, unit) in enumerate(zip(s.labels, s.units, strict=True))
    ]
    emg_cols, acc_cols = pick_channels(where, columns, emg=emg, acc=acc)
    emg_stream = numeric[emg_cols[0].index // _PER_STREAM]
    _check_timing(where, emg_stream)
    if emg_stream.values.shape[0] == 0:
        raise RecordingError(where, f"EMG stream {emg_stream.name!r} has no samples (empty recording)")
    start = float(emg_stream.stamps[0])
    emg_signal = _signal(where, emg_stream, StreamKind.EMG, emg_cols, start)
    acc_signal = None
    if acc_cols:
        acc_stream = numeric[acc_cols[0].index // _PER_STREAM]
        _check_timing(where, acc_stream)
        acc_signal = _signal(where, acc_stream, StreamKind.ACC, acc_cols, start)
    meta: dict[str, object] = {
        "format": "XDF",
        "lsl_start_s": start,
        "streams": tuple(f"{s.name} ({s.type}, {s.rate_hz:g} Hz)" for s in numeric),
        "channels": tuple(f"{c.label} [{c.unit}]" for c in columns),
    }
    annotations = tuple(a for raw in markers for a in _annotations(raw, start))
    return Recording(emg_signal, acc_signal, annotations, source=where, meta=meta)


def _check_magic(where: str, path: Path) -> None:
    """A clear error for a file that is not XDF at all (pyxdf's own check leaves the file open)."""
    try:
        if path.suffix.lower() == ".xdfz":
            with gzip.open(path, "rb") as fh:
                head = fh.read(4)
        else:
            with open(path, "rb") as fh:
                head = fh.read(4)
    except (OSError, EOFError) as err:
        raise RecordingError(where, f"cannot read the file ({err})") from None
    if head != _MAGIC:
        raise RecordingError(
            where,
            f"not an XDF file: it starts with {head!r} instead of {_MAGIC!r}; if it is another format, "
            "convert it or pass --format",
        )


def _check_structure(where: str, path: Path) -> None:
    """Walk the chunks (see the module docstring, "Structure first"); RecordingError at the first bad one."""
    try:
        if path.suffix.lower() == ".xdfz":
            with gzip.open(path, "rb") as gz:
                _walk_chunks(where, gz, None)
        else:
            with open(path, "rb") as fh:
                _walk_chunks(where, fh, path.stat().st_size)
    except (OSError, EOFError) as err:  # gzip: a bad CRC or a cut-off stream
        raise RecordingError(where, f"cannot read the file ({err}); copy it again from the source") from None


def _damaged(where: str, offset: int, problem: str) -> RecordingError:
    return RecordingError(
        where,
        f"the file is damaged or truncated at byte {offset}: {problem}; copy it again from the source or re-save it",
    )


def _walk_chunks(where: str, fh: BinaryIO | gzip.GzipFile, size: int | None) -> None:
    """Chunk by chunk from after the magic; ``size`` is the file size, None for gzip (read to find the end)."""
    streams: dict[int, tuple[int, int]] = {}  # stream id -> (channels, minimum bytes per sample)
    pos = len(_MAGIC)
    fh.seek(pos)
    while True:
        head = fh.read(1)
        if not head:
            return
        width = head[0]
        if width not in (1, 4, 8):
            raise _damaged(where, pos, f"a chunk length takes 1, 4 or 8 bytes, not {width}")
        raw = fh.read(width)
        if len(raw) < width:
            raise _damaged(where, pos, "the file ends inside a chunk length (truncated)")
        length = int.from_bytes(raw, "little")
        start = pos + 1 + width
        left = None if size is None else size - start
        if length < 2 or (left is not None and length > left):
            raise _damaged(
                where,
                pos,
                f"a chunk announces {length} bytes but "
                + ("a chunk needs at least 2" if length < 2 else f"only {left} are left in the file (truncated)"),
            )
        content = length - 2
        tag_bytes = fh.read(2)
        if len(tag_bytes) < 2:
            raise _damaged(where, pos, "the file ends inside a chunk tag (truncated)")
        tag = int.from_bytes(tag_bytes, "little")
        if not 1 <= tag <= 6:
            raise _damaged(where, pos, f"unknown chunk tag {tag} (XDF has tags 1 to 6)")
        stream_id = None
        if tag in _STREAM_TAGS:
            if content < 4:
                raise _damaged(where, pos, f"chunk of tag {tag} is too short for its stream id")
            stream_id = int.from_bytes(fh.read(4), "little")
            content -= 4
            if tag != 2 and stream_id not in streams:
                raise _damaged(where, pos, f"stream {stream_id} has data before its header")
        if tag == 4 and length != _CLOCK_OFFSET_BYTES:
            raise _damaged(where, pos, f"a clock offset chunk has {length} bytes instead of {_CLOCK_OFFSET_BYTES}")
        read = 0
        if tag in _XML_TAGS:
            if content > _MAX_XML_BYTES:
                raise _damaged(where, pos, f"an XML header of {content} bytes (at most {_MAX_XML_BYTES})")
            xml = fh.read(content)
            read = len(xml)
            info = _parse_xml(where, pos, xml)
            if tag == 2 and stream_id is not None:
                streams[stream_id] = _stream_layout(where, pos, info)
        elif tag == 3 and stream_id is not None:
            n_samples, read = _read_count(where, pos, fh)
            channels, per_sample = streams[stream_id]
            if n_samples * per_sample > content - read:
                raise _damaged(
                    where,
                    pos,
                    f"a sample chunk of stream {stream_id} announces {n_samples} samples of {channels} channel(s), "
                    f"more than its {content} bytes can hold",
                )
        pos = start + length
        skip = content - read
        if size is None:  # gzip: read forward (in blocks) to find out whether the chunk is complete
            while skip > 0:
                got = len(fh.read(min(skip, 1 << 20)))
                if got == 0:
                    raise _damaged(where, pos, "the file ends inside a chunk (truncated)")
                skip -= got
        else:
            fh.seek(pos)


def _read_count(where: str, pos: int, fh: BinaryIO | gzip.GzipFile) -> tuple[int, int]:
    """A sample count (XDF variable-length integer) and the bytes it took."""
    head = fh.read(1)
    if not head or head[0] not in (1, 4, 8):
        raise _damaged(where, pos, "a sample chunk has no valid sample count")
    raw = fh.read(head[0])
    if len(raw) < head[0]:
        raise _damaged(where, pos, "the file ends inside a sample count (truncated)")
    return int.from_bytes(raw, "little"), 1 + head[0]


class _DtdRefusedError(Exception):
    """Raised from expat's DOCTYPE handler, before any declaration in it is read."""


def _refuse_dtd(*_: object) -> None:
    raise _DtdRefusedError


def _parse_xml(where: str, pos: int, xml: bytes) -> dict[str, Any]:
    # A DTD is the only way to declare entities, and LSL never writes one. A first expat pass stops at the
    # DOCTYPE's start, before anything in it is declared or expanded ("billion laughs"), whatever the
    # document's encoding; no other dependency (defusedxml) is needed for that.
    check = expat.ParserCreate()
    check.StartDoctypeDeclHandler = _refuse_dtd
    check.EntityDeclHandler = _refuse_dtd
    try:
        check.Parse(xml, True)
        root = fromstring(xml)  # noqa: S314 - the pass above refused any DTD, so no entity can expand
    except _DtdRefusedError:
        raise _damaged(where, pos, "an XML header declares a DOCTYPE or ENTITY, which XDF headers never do") from None
    except (expat.ExpatError, ParseError) as err:
        raise _damaged(where, pos, f"an XML header does not parse ({err})") from None
    return {child.tag: (child.text or "").strip() for child in root}


def _stream_layout(where: str, pos: int, info: dict[str, str]) -> tuple[int, int]:
    """(channels, minimum bytes per sample) of a stream header, after checking its numbers."""
    name = info.get("name", "?")
    try:
        channels = int(info.get("channel_count", ""))
        rate = float(info.get("nominal_srate", ""))
    except ValueError:
        raise _damaged(
            where,
            pos,
            f"stream {name!r}: channel_count {info.get('channel_count')!r} or nominal_srate "
            f"{info.get('nominal_srate')!r} is not a number",
        ) from None
    if not 1 <= channels <= MAX_CHANNELS:
        raise _damaged(where, pos, f"stream {name!r}: channel_count {channels} is outside 1..{MAX_CHANNELS}")
    if not (math.isfinite(rate) and rate >= 0):
        raise _damaged(where, pos, f"stream {name!r}: nominal_srate {rate!r} must be a finite rate >= 0 Hz")
    fmt = info.get("channel_format", "")
    if fmt not in _FORMAT_BYTES:
        raise _damaged(
            where, pos, f"stream {name!r}: unknown channel_format {fmt!r} (known: {', '.join(_FORMAT_BYTES)})"
        )
    return channels, 1 + channels * _FORMAT_BYTES[fmt]


def _text(info: object, key: str) -> str:
    value = info.get(key) if isinstance(info, dict) else None
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0].strip()
    return ""


def _check_footer(where: str, name: str, raw: dict[str, Any]) -> None:
    footer = raw.get("footer")
    n = len(raw["time_stamps"])
    if not footer:
        raise RecordingError(
            where,
            f"stream {name!r} has no footer: the recording was not closed properly (cut off while being "
            f"written or copied); {n} sample(s) were read. Copy the file again, or re-save it with an XDF tool",
        )
    text = _text(footer.get("info", {}), "sample_count") if isinstance(footer, dict) else ""
    try:
        announced = int(text) if text else n
    except ValueError:
        raise RecordingError(
            where, f"stream {name!r}: the footer's sample_count {text!r} is not a number; the file is damaged"
        ) from None
    if announced != n:
        raise RecordingError(
            where,
            f"stream {name!r}: the footer announces {text} samples but {n} were read; the file is truncated or damaged",
        )


def _stream(where: str, name: str, raw: dict[str, Any]) -> _Stream | None:
    info = raw["info"]
    kind = _text(info, "type")
    try:
        rate = float(_text(info, "nominal_srate") or "nan")
        n_channels = int(_text(info, "channel_count") or "0")
    except ValueError:
        raise RecordingError(where, f"stream {name!r}: nominal_srate or channel_count is not a number") from None
    labels, units = _channel_meta(info, n_channels)
    if not any(units):
        if kind.lower() in _EMG_TYPES:
            raise RecordingError(
                where,
                f"stream {name!r} of type EMG has no channel units in its header (desc/channels/channel/unit); "
                "the unit is unknown (uV or mV is a factor 1000). Record with units, or convert the file",
                channel=labels[0] if labels else None,
            )
        if kind.lower() in _ACC_TYPES:
            log.warning("%s: ACC stream %r has no channel units; ignored", where, name)
        return None
    values = np.asarray(raw["time_series"])
    stamps = np.asarray(raw["time_stamps"], dtype=np.float64)
    return _Stream(name, kind, rate, labels, units, values.reshape(len(stamps), n_channels), stamps)


def _channel_meta(info: dict[str, Any], n_channels: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    desc = (info.get("desc") or [None])[0]
    found: list[dict[str, Any]] = []
    if isinstance(desc, dict):
        channels = (desc.get("channels") or [None])[0]
        if isinstance(channels, dict):
            found = [c for c in channels.get("channel", []) if isinstance(c, dict)]
    labels = []
    units = []
    for j in range(n_channels):
        c = found[j] if j < len(found) else {}
        labels.append(_text(c, "label") or f"ch{j + 1}")
        units.append(_text(c, "unit") or _text(c, "units"))
    return tuple(labels), tuple(units)


def _check_timing(where: str, stream: _Stream) -> None:
    n = stream.stamps.shape[0]
    if n < 2 or not math.isfinite(stream.rate_hz) or stream.rate_hz <= 0:
        return
    effective = (n - 1) / float(stream.stamps[-1] - stream.stamps[0]) if stream.stamps[-1] > stream.stamps[0] else 0.0
    if abs(effective - stream.rate_hz) > _RATE_TOLERANCE * stream.rate_hz:
        log.warning(
            "%s: stream %r has %d samples over %.1f s (%.1f Hz) but a nominal rate of %g Hz: samples were lost or "
            "the stream has breaks; times after a break are shifted",
            where,
            stream.name,
            n,
            float(stream.stamps[-1] - stream.stamps[0]),
            effective,
            stream.rate_hz,
        )


def _signal(where: str, stream: _Stream, kind: StreamKind, cols: list[Column], start: float) -> Signal:
    data = np.empty((stream.values.shape[0], len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        data[:, j] = stream.values[:, c.index % _PER_STREAM]
        data[:, j] *= factor(kind, c.unit)
    t0 = float(stream.stamps[0]) - start if data.shape[0] else 0.0
    skip = 0
    if t0 < 0:
        skip = math.ceil(-t0 * stream.rate_hz - 1e-6)
        t0 += skip / stream.rate_hz
        log.info("%s: %d %s sample(s) before the first EMG sample dropped", where, skip, kind.value.upper())
    if skip >= data.shape[0]:
        raise RecordingError(where, f"the {kind.value.upper()} stream {stream.name!r} ends before the EMG starts")
    return Signal(kind, stream.rate_hz, tuple(c.label for c in cols), data[skip:], t0_s=max(0.0, t0))


def _annotations(raw: dict[str, Any], start: float) -> Iterator[Annotation]:
    for stamp, sample in zip(raw["time_stamps"], raw["time_series"], strict=True):
        text = str(sample[0]) if sample else ""
        kind, subtype = parse_annotation_text(text)
        onset = float(stamp) - start
        if kind and onset >= 0:
            yield Annotation(kind, onset, onset, subtype)
