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

pyxdf parses samples one by one in Python (about 1-2 million samples per second), so a whole night at
2 kHz takes a minute to read.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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
    with _pyxdf_problems() as problems:
        try:
            raw_streams, _ = pyxdf.load_xdf(str(path))
        except (OSError, ValueError, RuntimeError, EOFError, KeyError, IndexError) as err:
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


def _text(info: dict[str, Any], key: str) -> str:
    value = info.get(key)
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
    text = _text(footer.get("info", {}), "sample_count")
    if text and int(text) != n:
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
