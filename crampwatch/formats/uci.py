"""Biometrics DataLOG text export: the layout of the UCI "EMG Dataset in Lower Limb" (DOI 10.24432/C5ZW3P).

The team checks the detector on these real recordings ("no cramp here": walking, leg extension, knee
flexion), so the reader takes the files exactly as the dataset ships them::

    File Name: 10Amar.log
    Channel 1: 'Recto femoral', 22896 values, engineering units: mV, no filters.
    ...
    Channel 5: 'Flexo', 22896 values, engineering units: deg, no filters.
    Digitals combined (event=16, d=8, c=4, b=2, a=1): 22896 values, .
    (blank line)
    -0.0046<TAB>-0.0023<TAB>0<TAB>0.0007<TAB>11.5<TAB>31

One tab-separated column per header line, in header order (the ``Digitals combined`` line is a column
too). CRLF, LF or CR line ends. Rows whose cells are all empty (the files end with one) are skipped; an
empty cell in a channel that is used is an error (truncated row), in an unused one (the goniometer's
last value is sometimes missing) it is ignored.

* **Sample rate:** the export does not store it. The DataLOG MWX8 of this dataset records at
  :data:`DATALOG_RATE_HZ` = 1000 Hz (the dataset's description), and that is assumed.
* **Channels:** every channel in a voltage unit (``mV``) is EMG, whatever its label (some files label one
  muscle ``EMG Semitendinoso`` and the others not, which the generic "prefer EMG-labelled" rule would
  misread); ``--emg`` narrows the choice. ``deg`` (the knee goniometer) and the digital inputs are not
  signals the detector uses and are ignored. There is no accelerometer.
* **Truncation:** fewer rows than the ``N values`` the header announces is an error naming both counts.

Claimed by name only (``--format datalog``); ``.txt`` files are routed here by
:mod:`crampwatch.formats.txt` when their first line starts with ``File Name:``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import RecordingError
from ..frames import StreamKind
from ..recording import Recording, Signal
from .columns import Column, factor, pick_channels
from .registry import register

__all__ = ["DATALOG_RATE_HZ", "FIRST_LINE_PREFIX", "DatalogFormat"]

log = logging.getLogger(__name__)

DATALOG_RATE_HZ: Final = 1000.0
FIRST_LINE_PREFIX: Final = "File Name:"
_CHANNEL: Final = re.compile(
    r"^Channel\s+\d+:\s*'(?P<label>[^']*)',\s*(?P<n>\d+)\s+values,\s*engineering units:\s*(?P<unit>[^,]*)"
)
_DIGITALS: Final = re.compile(r"^Digitals combined.*?:\s*(?P<n>\d+)\s+values")


@register
class DatalogFormat:
    """Biometrics DataLOG text export (UCI lower-limb EMG); see the module docstring."""

    name = "datalog"
    suffixes: tuple[str, ...] = ()

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        return _read(path, emg=emg, acc=acc)


@dataclass(frozen=True, slots=True)
class _HeaderChannel:
    label: str
    unit: str
    n_values: int


def _read(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
    where = str(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as err:
        raise RecordingError(where, f"cannot read the file ({err.strerror})") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith(FIRST_LINE_PREFIX):
        raise RecordingError(
            where, f"not a DataLOG text export: the first line does not start with {FIRST_LINE_PREFIX!r}"
        )
    channels, first_row = _header(where, lines)
    columns = [Column(j, c.label, c.unit, DATALOG_RATE_HZ) for j, c in enumerate(channels)]
    if emg is None:
        emg = [c.label for c in columns if c.is_emg_unit]
        if not emg:
            listing = ", ".join(c.describe() for c in columns)
            raise RecordingError(where, f"no EMG channel found (no channel in mV); the file has: {listing}")
    emg_cols, _ = pick_channels(where, columns, emg=emg, acc=())
    if acc:
        raise RecordingError(where, "--acc: DataLOG exports of this layout have no accelerometer channels")
    data = _rows(where, lines, first_row, len(channels), [c.index for c in emg_cols])
    announced = min(channels[c.index].n_values for c in emg_cols)
    if data.shape[0] < announced:
        raise RecordingError(
            where,
            f"the file is truncated: the header announces {announced} values per channel but there are only "
            f"{data.shape[0]} rows; copy the file again from the source",
        )
    if data.shape[0] > announced:
        log.warning("%s: %d rows but the header announces %d values", where, data.shape[0], announced)
    for j, c in enumerate(emg_cols):
        data[:, j] *= factor(StreamKind.EMG, c.unit)
    signal = Signal(StreamKind.EMG, DATALOG_RATE_HZ, tuple(c.label for c in emg_cols), data)
    meta: dict[str, object] = {
        "format": "DataLOG text",
        "file_name": lines[0].removeprefix(FIRST_LINE_PREFIX).strip(),
        "channels": tuple(f"{c.label} [{c.unit}]" for c in channels),
    }
    return Recording(signal, None, (), source=where, meta=meta)


def _header(where: str, lines: list[str]) -> tuple[list[_HeaderChannel], int]:
    """The header's channels in column order, and the index of the first line after the header."""
    channels: list[_HeaderChannel] = []
    for i, line in enumerate(lines[1:], start=1):
        stripped = line.strip()
        if not stripped:
            if not channels:
                raise RecordingError(where, "the header lists no 'Channel N: ...' lines")
            return channels, i + 1
        m = _CHANNEL.match(stripped)
        if m:
            channels.append(_HeaderChannel(m["label"].strip(), m["unit"].strip(), int(m["n"])))
            continue
        d = _DIGITALS.match(stripped)
        if d:
            channels.append(_HeaderChannel("digitals", "", int(d["n"])))
            continue
        raise RecordingError(where, f"line {i + 1}: unexpected header line {stripped[:60]!r}")
    raise RecordingError(where, "the header is not followed by a blank line and data; the file is truncated")


def _rows(where: str, lines: list[str], first: int, n_columns: int, used: list[int]) -> npt.NDArray[np.float64]:
    """The ``used`` columns of every data row as float64, checking each row.

    The EMG columns end at the first row where all of them are empty: the goniometer column sometimes
    runs on for a few rows after the EMG stopped, and such rows are not samples of the EMG.
    """
    rows = [(i, line.split("\t")) for i, line in enumerate(lines[first:], start=first + 1) if line.strip("\t ")]
    for line_no, cells in rows:
        if len(cells) < n_columns:
            raise RecordingError(where, f"line {line_no} has {len(cells)} of {n_columns} columns: the row is truncated")
    text = np.array([[cells[j].strip() for j in used] for _, cells in rows], dtype=str).reshape(len(rows), len(used))
    empty = text == ""
    all_empty = np.flatnonzero(empty.all(axis=1))
    end = int(all_empty[0]) if all_empty.size else len(rows)
    if not empty[end:].all():
        again = end + int(np.flatnonzero(~empty[end:].all(axis=1))[0])
        raise RecordingError(
            where, f"line {rows[again][0]}: EMG values again after the EMG ended at line {rows[end][0]}"
        )
    text, empty = text[:end], empty[:end]
    if empty.any():
        r, c = (int(i[0]) for i in np.nonzero(empty))
        raise RecordingError(
            where, f"line {rows[r][0]}: the value is empty (truncated row)", channel=_label(lines, used[c])
        )
    try:
        return text.astype(np.float64)
    except ValueError:
        for r, row in enumerate(text):
            for c, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    raise RecordingError(
                        where,
                        f"line {rows[r][0]}: the value holds {str(cell)!r}, not a number",
                        channel=_label(lines, used[c]),
                    ) from None
        raise


def _label(lines: list[str], column: int) -> str:
    found = [m["label"] for m in (_CHANNEL.match(line.strip()) for line in lines[1:12]) if m]
    return found[column] if column < len(found) else f"column {column + 1}"
