"""CSV recordings: what a researcher exports from MATLAB, pandas or a spreadsheet, read without guessing.

Layout (also in ``docs/formats.md``)::

    # rate_hz=2000
    # start=2026-01-01T22:00:00
    time_s,calf [uV],tibialis [uV],acc_x [g],acc_y [g],acc_z [g]
    0.0000,1.52,-0.33,0.012,-0.020,0.998
    0.0005,1.49,-0.41,,,
    ...

* Comment lines start with ``#``. ``# rate_hz=R`` gives the row rate exactly; without it the rate is
  derived from ``time_s`` (and rounded to a whole number of Hz when within 0.05 % of one).
  ``# start=ISO-8601`` gives the wall-clock start (stored as ``meta["start"]``, as EDF does; a time
  without zone is taken as UTC). Other comments are ignored.
* The header row comes first after the comments. The first column is the time in seconds (``time_s`` or
  ``time [s]``); it must be regular (every row one sample period after the previous one, within half a
  period plus the rounding of the printed times). Every other column is ``label [unit]``: the unit is
  required, because a wrong guess between µV and mV scales a signal by 1000. Voltage units make EMG,
  acceleration units make ACC (see :mod:`crampwatch.formats.columns` for the rules and ``--emg/--acc``);
  columns with other units (a knee angle in ``deg``) are ignored.
* **Different rates in one file:** rows are at the fastest rate; a slower channel has a value only on
  every k-th row and the other cells are **empty** (what pandas writes for NaN with the default
  ``na_rep=""``). Its rate is the row rate / k and its start is the time of its first value. Its values
  must lie on exactly every k-th row; an empty cell anywhere else is an error. A literal ``nan`` or
  ``inf`` is never "no sample": it is an error naming the line and channel.
* Separator: comma (``,``); a file whose header contains tabs or semicolons and no comma is read with
  that separator instead. Decimal point ``.`` only.

The whole table is held in memory as float64 (8 bytes x rows x columns, 2.8 GB for 8 h at 2 kHz with
six columns), so CSV suits excerpts and lab sessions; store whole nights as EDF/BDF.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

from ..errors import RecordingError
from ..frames import StreamKind
from ..recording import Recording, Signal
from .columns import Column, factor, pick_channels
from .registry import register

__all__ = ["CsvFormat"]

log = logging.getLogger(__name__)

_LABEL_UNIT: Final = re.compile(r"^\s*(?P<label>.*?)\s*\[(?P<unit>[^\]]*)\]\s*$")
_TIME_HEADERS: Final = frozenset({"time_s", "time [s]", "time[s]", "t_s"})
_BLOCK_ROWS: Final = 65_536
_RATE_KEY: Final = "rate_hz"
_START_KEY: Final = "start"


@register
class CsvFormat:
    """``time_s`` + ``label [unit]`` columns; see the module docstring for the layout."""

    name = "csv"
    suffixes = (".csv", ".tsv")

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        return _read(path, emg=emg, acc=acc)


@dataclass(frozen=True, slots=True)
class _Table:
    labels: list[str]  # header cells after time_s, as written
    units: list[str]
    time: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]  # (rows, columns), NaN where the cell was empty
    empty: npt.NDArray[np.bool_]
    time_decimals: int
    first_data_line: int  # line number of the first data row, for messages


def _read(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
    where = str(path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
    except OSError as err:
        raise RecordingError(where, f"cannot read the file ({err.strerror})") from None
    with fh:
        try:
            settings, table = _parse(where, fh)
        except UnicodeDecodeError as err:
            raise RecordingError(
                where, f"not a text (UTF-8) CSV file: undecodable byte at offset {err.start}; is it EDF/BDF or XDF?"
            ) from None
    rate = _row_rate(where, settings.get(_RATE_KEY), table)
    columns = _columns(where, table, rate)
    emg_cols, acc_cols = pick_channels(where, columns, emg=emg, acc=acc)
    emg_signal = _signal(where, table, StreamKind.EMG, emg_cols, rate)
    acc_signal = _signal(where, table, StreamKind.ACC, acc_cols, rate) if acc_cols else None
    meta: dict[str, object] = {
        "format": "CSV",
        "channels": tuple(f"{label} [{unit}]" for label, unit in zip(table.labels, table.units, strict=True)),
        "time_offset_s": float(table.time[0]),
    }
    if _START_KEY in settings:
        meta["start"] = _start(where, settings[_START_KEY])
    return Recording(emg_signal, acc_signal, (), source=where, meta=meta)


def _parse(where: str, fh: TextIO) -> tuple[dict[str, str], _Table]:
    """Comment settings, then the header, then every data row (validated) as a float table."""
    settings: dict[str, str] = {}
    line_no = 0
    header_line = ""
    for line in fh:
        line_no += 1
        stripped = line.strip()
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition("=")
            if sep:
                settings[key.strip().lower()] = value.strip()
            continue
        if stripped:
            header_line = line
            break
    if not header_line:
        raise RecordingError(where, "no header row: the file is empty or has only comments")
    delimiter = _delimiter(header_line)
    try:
        header = next(csv.reader([header_line], delimiter=delimiter))
    except csv.Error as err:
        raise _malformed(where, line_no, err) from None
    labels, units = _header(where, header)
    n_fields = len(header)
    rows = csv.reader(fh, delimiter=delimiter)
    times: list[npt.NDArray[np.float64]] = []
    blocks: list[npt.NDArray[np.float64]] = []
    empties: list[npt.NDArray[np.bool_]] = []
    decimals = 0
    first_data_line = line_no + 1
    for block, first_line in _blocks(where, rows, n_fields, line_no):
        text = np.array(block, dtype=str)
        empty = text == ""
        if empty[:, 0].any():
            bad = first_line + int(np.flatnonzero(empty[:, 0])[0])
            raise RecordingError(where, f"line {bad}: the time_s cell is empty; every row needs its time")
        if not times:
            decimals = max(len(t.partition(".")[2]) for t in text[:100, 0])
        try:
            numbers = np.where(empty, "nan", text).astype(np.float64)
        except ValueError:
            raise _not_a_number(where, block, first_line, header) from None
        bad_value = ~np.isfinite(numbers) & ~empty
        if bad_value.any():
            r, c = (int(i[0]) for i in np.nonzero(bad_value))
            raise RecordingError(
                where,
                f"line {first_line + r}: value {block[r][c]!r} is NaN or infinite; leave the cell empty only "
                "where a slower channel has no sample, and cut or interpolate gaps before export",
                channel=header[c],
            )
        times.append(numbers[:, 0])
        blocks.append(numbers[:, 1:])
        empties.append(empty[:, 1:])
    if not times:
        raise RecordingError(where, "the file has a header but no data rows (empty recording)")
    table = _Table(
        labels,
        units,
        np.concatenate(times),
        np.concatenate(blocks),
        np.concatenate(empties),
        decimals,
        first_data_line,
    )
    return settings, table


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    for candidate in ("\t", ";"):
        if candidate in header_line:
            return candidate
    return ","


def _header(where: str, header: list[str]) -> tuple[list[str], list[str]]:
    if not header or header[0].strip().lower() not in _TIME_HEADERS:
        first = header[0] if header else ""
        raise RecordingError(
            where,
            f"the first column must be the time in seconds, headed 'time_s', not {first!r}; "
            "see docs/formats.md for the CSV layout",
        )
    if len(header) < 2:
        raise RecordingError(where, "the header has only the time column; add at least one EMG column 'name [uV]'")
    labels, units = [], []
    for cell in header[1:]:
        m = _LABEL_UNIT.match(cell)
        if m is None or not m["unit"].strip():
            raise RecordingError(
                where,
                f"column header {cell!r} has no unit; write it as 'label [unit]', e.g. 'calf [uV]' or 'acc_x [g]'",
                channel=cell.strip(),
            )
        labels.append(m["label"])
        units.append(m["unit"].strip())
    if len(set(labels)) != len(labels):
        raise RecordingError(where, f"column labels must be unique, got {labels}")
    return labels, units


def _blocks(
    where: str, rows: Iterator[list[str]], n_fields: int, header_line: int
) -> Iterator[tuple[list[list[str]], int]]:
    """Data rows in blocks of at most _BLOCK_ROWS, each row checked for its field count."""
    block: list[list[str]] = []
    first_line = header_line + 1
    line = header_line
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as err:
            raise _malformed(where, line + 1, err) from None
        line += 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if row[0].lstrip().startswith("#"):
            continue
        if len(row) != n_fields:
            raise RecordingError(
                where,
                f"line {line} has {len(row)} of the header's {n_fields} fields: the file is truncated or a row "
                "is malformed; complete or remove that row",
            )
        if not block:
            first_line = line
        block.append([cell.strip() for cell in row])
        if len(block) == _BLOCK_ROWS:
            yield block, first_line
            block = []
    if block:
        yield block, first_line


def _malformed(where: str, line: int, err: csv.Error) -> RecordingError:
    """The csv module's complaint (a NUL byte, a field over its size limit) as what to fix in the file."""
    return RecordingError(
        where,
        f"line {line}: not a well-formed CSV row ({err}); a field longer than {csv.field_size_limit()} characters "
        "means a missing line break or an unclosed quote, a NUL byte means the file is binary or damaged",
    )


def _not_a_number(where: str, block: list[list[str]], first_line: int, header: list[str]) -> RecordingError:
    for r, row in enumerate(block):
        for c, cell in enumerate(row):
            if cell == "":
                continue
            try:
                float(cell)
            except ValueError:
                return RecordingError(
                    where,
                    f"line {first_line + r}: {cell!r} is not a number (use '.' as the decimal point)",
                    channel=header[c],
                )
    return RecordingError(where, f"a value near line {first_line} is not a number")


def _row_rate(where: str, declared: str | None, table: _Table) -> float:
    """The row rate: ``# rate_hz`` if given, else from time_s; time_s must agree with it."""
    t = table.time
    n = t.shape[0]
    if declared is not None:
        try:
            rate = float(declared)
        except ValueError:
            raise RecordingError(where, f"'# rate_hz={declared}' is not a number") from None
        if not (math.isfinite(rate) and rate > 0):
            raise RecordingError(where, f"'# rate_hz={declared}' must be a positive sample rate in Hz")
    elif n < 2:
        raise RecordingError(where, "one data row and no '# rate_hz=' line: the sample rate cannot be known")
    else:
        span = float(t[-1] - t[0])
        if not span > 0:
            raise RecordingError(where, f"time_s does not increase (first {t[0]}, last {t[-1]}); sample rate is zero")
        rate = (n - 1) / span
        rate = float(round(rate)) if abs(rate - round(rate)) <= 5e-4 * rate else float(f"{rate:.6g}")
        log.info("%s: sample rate %g Hz derived from time_s (add '# rate_hz=' to state it)", where, rate)
    tolerance = 0.5 / rate + 0.5 * 10.0 ** (-table.time_decimals) + 1e-9
    expected = t[0] + np.arange(n) / rate
    off = np.abs(t - expected)
    if n and off.max() > tolerance:
        i = int(np.argmax(off > tolerance))
        raise RecordingError(
            where,
            f"time_s is not regular at {rate:g} Hz: line {table.first_data_line + i} has t={t[i]:.6f} s, "
            f"expected {expected[i]:.6f} s. Rows must be consecutive samples; a gap or a wrong '# rate_hz' "
            "causes this (split the file at gaps)",
        )
    return rate


def _columns(where: str, table: _Table, row_rate: float) -> list[Column]:
    """One Column per channel, its rate and group from the rows where it has values."""
    out = []
    for j, (label, unit) in enumerate(zip(table.labels, table.units, strict=True)):
        present = np.flatnonzero(~table.empty[:, j])
        if present.size == 0:
            log.warning("%s: column %r has no values; ignored", where, label)
            continue
        step = int(present[1] - present[0]) if present.size > 1 else 1
        regular = np.array_equal(present, present[0] + step * np.arange(present.size))
        if not regular:
            i = int(np.argmax(present != present[0] + step * np.arange(present.size)))
            raise RecordingError(
                where,
                f"values are not on a regular grid of rows (every {step} row(s)): line "
                f"{table.first_data_line + int(present[i])} breaks it. A channel slower than the rows must have a "
                "value on exactly every k-th row; an empty cell elsewhere is a missing sample (cut or interpolate "
                "the gap)",
                channel=label,
            )
        first = int(present[0])
        group = "" if first == 0 else f"first value on line {table.first_data_line + first}"
        out.append(Column(j, label, unit, row_rate / step, group))
    return out


def _signal(where: str, table: _Table, kind: StreamKind, cols: list[Column], row_rate: float) -> Signal:
    present = np.flatnonzero(~table.empty[:, cols[0].index])
    if any(not np.array_equal(np.flatnonzero(~table.empty[:, c.index]), present) for c in cols[1:]):
        raise RecordingError(
            where,
            f"the {kind.value.upper()} channels {[c.label for c in cols]} have values on different rows; "
            "channels of one stream must have their samples on the same rows",
        )
    data = table.values[np.ix_(present, np.array([c.index for c in cols], dtype=np.intp))]
    for j, c in enumerate(cols):
        data[:, j] *= factor(kind, c.unit)
    t0 = float(table.time[present[0]] - table.time[0])
    return Signal(kind, cols[0].rate_hz, tuple(c.label for c in cols), np.ascontiguousarray(data), t0_s=t0)


def _start(where: str, text: str) -> datetime:
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise RecordingError(where, f"'# start={text}' is not an ISO 8601 time like 2026-01-01T22:00:00") from None
    if start.tzinfo is not None:
        start = start.astimezone(UTC).replace(tzinfo=None)
    return start
