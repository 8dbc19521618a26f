"""Recording file formats, registered by name: adding a format means adding one module.

A format is any object that satisfies :class:`Reader` (a ``name``, the file ``suffixes`` it claims, and a
``read`` method). Its module calls :func:`register` at import time, and ``collector/formats/__init__.py``
imports every format module, so ``read_recording`` knows all of them (like telegraf's
``plugins/inputs/all``)::

    @register
    class CsvFormat:
        name = "csv"
        suffixes = (".csv",)

        def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
            ...

:func:`read_recording` picks the reader (by ``fmt`` name, else by file suffix), reads, and then checks the
result with :func:`check_signal` so every format gets the same guarantees: sample rates in a plausible
range, at least one sample, no NaN/inf. Every problem is a :class:`~crampwatch.errors.RecordingError`
naming the file (and the channel where there is one).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError, RecordingError
from ..frames import StreamKind
from ..recording import Recording, Signal, StreamedRecording, StreamedSignal

__all__ = [
    "RATE_LIMITS_HZ",
    "Reader",
    "available_formats",
    "check_finite",
    "check_rate",
    "check_signal",
    "get_reader",
    "open_recording",
    "read_recording",
    "reader_for",
    "register",
]

log = logging.getLogger(__name__)

#: Plausible sample rates per stream kind, inclusive. Anything outside is a broken header, not a device.
RATE_LIMITS_HZ: Final[dict[StreamKind, tuple[float, float]]] = {
    StreamKind.EMG: (50.0, 20_000.0),
    StreamKind.ACC: (1.0, 5_000.0),
}


class Reader(Protocol):
    """What a recording file format provides.

    ``name`` and ``suffixes`` are read-only here, so plain class attributes satisfy the protocol.
    """

    @property
    def name(self) -> str:
        """Short lower-case name, used by ``--format`` (``"edf"``)."""
        ...

    @property
    def suffixes(self) -> tuple[str, ...]:
        """File suffixes with the dot (``(".edf", ".bdf")``), matched case-insensitively; compound ones
        like ``".csv.gz"`` work."""
        ...

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        """Read ``path``. ``emg``/``acc`` are channel labels that override auto-detection; an empty
        ``acc`` means "no ACC". Raise RecordingError for anything unusable."""
        ...


_R = TypeVar("_R", bound=Reader)

_READERS: dict[str, Reader] = {}


@overload
def register(reader: type[_R]) -> type[_R]: ...
@overload
def register(reader: _R) -> _R: ...
def register(reader: type[_R] | _R) -> type[_R] | _R:
    """Register a format. Use as a class decorator (the class is instantiated without arguments) or call
    with an instance. Raises ValueError if the name or a suffix is already taken by another format."""
    instance: Reader = reader() if isinstance(reader, type) else reader
    name = instance.name.strip().lower()
    if not name:
        raise ValueError(f"format {instance!r} has an empty name")
    suffixes = tuple(_normalise_suffix(s) for s in instance.suffixes)
    for other in _READERS.values():
        if other.name == name and type(other) is type(instance):
            continue  # the same format imported twice (e.g. a module reload): replace it
        if other.name == name:
            raise ValueError(f"format name {name!r} is already registered by {type(other).__qualname__}")
        clash = set(suffixes) & {_normalise_suffix(s) for s in other.suffixes}
        if clash:
            raise ValueError(f"suffix(es) {sorted(clash)} of format {name!r} already belong to {other.name!r}")
    _READERS[name] = instance
    return reader


def _normalise_suffix(suffix: str) -> str:
    s = suffix.strip().lower()
    return s if s.startswith(".") else f".{s}"


def available_formats() -> dict[str, tuple[str, ...]]:
    """Registered formats: name -> suffixes, sorted by name."""
    return {name: _READERS[name].suffixes for name in sorted(_READERS)}


def _known() -> str:
    return ", ".join(f"{n} ({' '.join(s)})" for n, s in available_formats().items()) or "none"


def get_reader(name: str) -> Reader:
    """The format registered as ``name`` (case-insensitive), or ConfigError listing the known ones."""
    try:
        return _READERS[name.strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown recording format {name!r}; known formats: {_known()}") from None


def reader_for(path: str | os.PathLike[str]) -> Reader:
    """The format claiming ``path``'s suffix (case-insensitive; the longest matching suffix wins)."""
    filename = Path(path).name.lower()
    best: tuple[int, Reader] | None = None
    for reader in _READERS.values():
        for suffix in reader.suffixes:
            s = _normalise_suffix(suffix)
            if filename.endswith(s) and (best is None or len(s) > best[0]):
                best = (len(s), reader)
    if best is None:
        raise RecordingError(
            str(path),
            f"unknown file type {Path(path).suffix or '(no suffix)'!r}; known formats: {_known()}. "
            "Rename the file or pass the format explicitly (--format NAME)",
        )
    return best[1]


def read_recording(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    emg: Sequence[str] | None = None,
    acc: Sequence[str] | None = None,
) -> Recording:
    """Read a recording file into a :class:`~crampwatch.recording.Recording` in canonical units.

    Args:
        path: the file.
        fmt: format name (see :func:`available_formats`); default: chosen by the file suffix.
        emg: labels of the EMG channels to use instead of auto-detection (``--emg``).
        acc: labels of the three ACC axes (x, y, z) to use instead of auto-detection (``--acc``);
            an empty sequence means "ignore ACC".

    Raises:
        RecordingError: the file is missing, of an unknown type, unreadable or has no usable EMG.
    """
    p, reader, emg_labels, acc_labels = _resolve(path, fmt, emg, acc)
    recording = reader.read(p, emg=emg_labels, acc=acc_labels)
    check_signal(str(p), recording.emg)
    if recording.acc is not None:
        check_signal(str(p), recording.acc)
    return recording


def open_recording(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    emg: Sequence[str] | None = None,
    acc: Sequence[str] | None = None,
) -> Recording | StreamedRecording:
    """Like :func:`read_recording`, but a format that can (EDF/BDF) leaves the samples in the file.

    ``detect`` uses it, so memory stays flat however long the night. The checks of :func:`check_signal`
    hold here too: rates and sample counts when the file is opened, finite values as each block is read
    (a RecordingError then), and the flat-channel warning once the last block has been read. Formats
    without an ``open`` method (CSV, XDF, the text formats: files that are small, or that cannot be read
    from the middle) are read whole. Close a StreamedRecording when done (it is a context manager).
    """
    p, reader, emg_labels, acc_labels = _resolve(path, fmt, emg, acc)
    opener = getattr(reader, "open", None)
    if opener is None:
        recording = reader.read(p, emg=emg_labels, acc=acc_labels)
        check_signal(str(p), recording.emg)
        if recording.acc is not None:
            check_signal(str(p), recording.acc)
        return recording
    streamed: StreamedRecording = opener(p, emg=emg_labels, acc=acc_labels)
    try:
        emg_signal = _checked(str(p), streamed.emg)
        acc_signal = _checked(str(p), streamed.acc) if streamed.acc is not None else None
    except BaseException:
        streamed.close()
        raise
    return dataclasses.replace(streamed, emg=emg_signal, acc=acc_signal)


def _resolve(
    path: str | os.PathLike[str], fmt: str | None, emg: Sequence[str] | None, acc: Sequence[str] | None
) -> tuple[Path, Reader, tuple[str, ...] | None, tuple[str, ...] | None]:
    """The file, its reader and the channel overrides, or the RecordingError that says what is wrong."""
    p = Path(path)
    if not p.exists():
        raise RecordingError(str(p), "file not found")
    if p.is_dir():
        raise RecordingError(str(p), "is a directory, not a recording file")
    reader = reader_for(p) if fmt is None else _READERS.get(fmt.strip().lower())
    if reader is None:
        raise RecordingError(str(p), f"unknown format {fmt!r}; known formats: {_known()}")
    emg_labels = _labels(p, "emg", emg)
    if emg_labels == ():
        raise RecordingError(str(p), "--emg was given without channel labels; name at least one channel")
    return p, reader, emg_labels, _labels(p, "acc", acc)


def _checked(path: str, signal: StreamedSignal) -> StreamedSignal:
    """``signal`` whose blocks meet :func:`check_signal` as they are read."""
    check_rate(path, signal.kind, signal.rate_hz)
    if signal.n_samples == 0:
        raise RecordingError(path, f"the {signal.kind.value.upper()} stream has no samples (empty recording)")
    low = np.full(len(signal.channel_names), np.inf)
    high = np.full(len(signal.channel_names), -np.inf)

    def read(start: int, count: int) -> npt.NDArray[np.float64]:
        block = signal.read(start, count)
        check_finite(path, Signal(signal.kind, signal.rate_hz, signal.channel_names, block, signal.t0_s), start)
        if signal.kind is StreamKind.EMG:
            np.minimum(low, [block[:, j].min() for j in range(block.shape[1])], out=low)
            np.maximum(high, [block[:, j].max() for j in range(block.shape[1])], out=high)
            if start + count >= signal.n_samples:
                for j in np.flatnonzero(high == low):
                    _warn_flat(path, signal.channel_names[j], float(low[j]))
        return block

    return dataclasses.replace(signal, read=read)


def _labels(path: Path, what: str, labels: Sequence[str] | None) -> tuple[str, ...] | None:
    """Normalise an override: a lone string is one label (not a sequence of characters)."""
    if labels is None:
        return None
    out = (labels,) if isinstance(labels, str) else tuple(labels)
    if len(set(out)) != len(out):
        raise RecordingError(str(path), f"--{what} names a channel twice: {list(out)}")
    return out


def check_rate(path: str, kind: StreamKind, rate_hz: float, *, channel: str | None = None) -> None:
    """RecordingError unless ``rate_hz`` is finite and inside :data:`RATE_LIMITS_HZ` for ``kind``."""
    low, high = RATE_LIMITS_HZ[kind]
    if not (np.isfinite(rate_hz) and low <= rate_hz <= high):
        raise RecordingError(
            path,
            f"{kind.value.upper()} sample rate {rate_hz!r} Hz is outside the plausible range "
            f"{low:g}..{high:g} Hz; the header is probably corrupt (check the record duration and the "
            "samples per record)",
            channel=channel,
        )


def check_signal(path: str, signal: Signal) -> None:
    """Check a signal read from ``path``: plausible rate, at least one sample, finite values.

    A flat (constant) EMG channel is allowed but logged as a warning: it usually means lead-off.
    """
    check_rate(path, signal.kind, signal.rate_hz)
    if signal.n_samples == 0:
        raise RecordingError(path, f"the {signal.kind.value.upper()} stream has no samples (empty recording)")
    check_finite(path, signal)
    if signal.kind is StreamKind.EMG:
        for j, name in enumerate(signal.channel_names):
            column = signal.data[:, j]
            if np.ptp(column) == 0:
                _warn_flat(path, name, column[0])


def _warn_flat(path: str, channel: str, value: float) -> None:
    log.warning("%s: EMG channel %r is flat (constant %.6g µV throughout): electrode lead-off?", path, channel, value)


def check_finite(path: str, signal: Signal, first_sample: int = 0) -> None:
    """RecordingError naming the first channel with a NaN or infinite sample.

    ``first_sample`` is the index of ``signal``'s first sample in the file, when it is a block of it.
    """
    for j, name in enumerate(signal.channel_names):
        column = signal.data[:, j]
        finite = np.isfinite(column)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            first = int(bad[0])
            at = first_sample + first
            raise RecordingError(
                path,
                f"{bad.size} sample(s) are NaN or infinite, the first at sample {at} "
                f"(t={signal.t0_s + at / signal.rate_hz:.3f} s, value {column[first]}); "
                "cut or interpolate the gap before using the file",
                channel=name,
            )
