"""BioSPPy "Simple Text Format": the text files of BioSPPy's examples (BITalino recordings).

The team's real "no cramp" checks use ``shared/data/real/biosppy/``, so the reader exists to read those
files as they are::

    # Simple Text Format
    # Sampling Rate (Hz):= 1000.00
    # Resolution:= 12
    # Units:= m/s^2            (optional; one unit, or one per channel separated by tabs)
    # Labels:= EMG             (tab-separated, one per column)
    2055.0
    2056.0

One sample per line, columns separated by whitespace. The sample rate is required.

Units: a ``Units`` line is used as written (voltage -> EMG, acceleration -> ACC, see
:mod:`crampwatch.formats.columns`). Without one, the values are raw ADC counts. For a channel labelled
``EMG`` with a ``Resolution`` of n bits they are converted with the **BITalino EMG transfer function**
(the device BioSPPy's examples come from): ``uV = (count / 2^n - 1/2) x 3.3 V / 1009 x 1e6``, and a
warning says so; a wrong assumption here only scales the signal, which the detector's per-recording
baseline absorbs. Raw counts of any other channel have no known unit and are ignored.

Claimed by name only (``--format biosppy``); ``.txt`` files are routed here by
:mod:`crampwatch.formats.txt` when their first line is ``# Simple Text Format``.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..errors import RecordingError
from ..frames import StreamKind
from ..recording import Recording, Signal
from .columns import Column, factor, pick_channels
from .registry import register

__all__ = ["FIRST_LINE", "BiosppyFormat"]

log = logging.getLogger(__name__)

FIRST_LINE: Final = "# Simple Text Format"
_FIELD: Final = re.compile(r"^#\s*(?P<key>[^:]+?)\s*:=\s*(?P<value>.*)$")
_EMG_LABEL: Final = re.compile(r"emg", re.IGNORECASE)
#: BITalino: VCC 3.3 V, EMG sensor gain 1009 (BITalino EMG sensor data sheet).
_BITALINO_VCC_V: Final = 3.3
_BITALINO_EMG_GAIN: Final = 1009.0


@register
class BiosppyFormat:
    """BioSPPy Simple Text Format; see the module docstring."""

    name = "biosppy"
    suffixes: tuple[str, ...] = ()

    def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
        return _read(path, emg=emg, acc=acc)


def _read(path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
    where = str(path)
    fields = _header(where, path)
    rate = _rate(where, fields)
    labels = fields.get("labels", "").split("\t") if fields.get("labels") else []
    try:
        with warnings.catch_warnings():
            # numpy warns about a file without data rows; that is reported below as an error instead.
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, comments="#", ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise RecordingError(
            where, f"the data rows are malformed or truncated ({err}); every row needs one number per label"
        ) from None
    if data.shape[0] == 0:
        raise RecordingError(where, "no data rows (empty recording)")
    if not labels:
        labels = [f"ch{j + 1}" for j in range(data.shape[1])]
    if len(labels) != data.shape[1]:
        raise RecordingError(
            where, f"the header names {len(labels)} channel(s) ({labels}) but the rows have {data.shape[1]} values"
        )
    units, raw = _units(where, fields, labels)
    columns = [Column(j, label, unit, rate) for j, (label, unit) in enumerate(zip(labels, units, strict=True))]
    emg_cols, acc_cols = pick_channels(where, columns, emg=emg, acc=acc)
    bits = _resolution(where, fields)
    emg_signal = _signal(where, data, StreamKind.EMG, emg_cols, raw, bits)
    acc_signal = _signal(where, data, StreamKind.ACC, acc_cols, raw, bits) if acc_cols else None
    meta: dict[str, object] = {
        "format": "BioSPPy text",
        "channels": tuple(
            f"{label} [{'counts' if j in raw else unit}]"
            for j, (label, unit) in enumerate(zip(labels, units, strict=True))
        ),
    }
    return Recording(emg_signal, acc_signal, (), source=where, meta=meta)


def _header(where: str, path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip()
            if first != FIRST_LINE:
                raise RecordingError(where, f"not a BioSPPy Simple Text file: the first line is {first[:40]!r}")
            for line in fh:
                if not line.startswith("#"):
                    break
                m = _FIELD.match(line.rstrip("\r\n"))
                if m:
                    fields[m["key"].strip().lower()] = m["value"].strip(" \r\n")
    except OSError as err:
        raise RecordingError(where, f"cannot read the file ({err.strerror})") from None
    return fields


def _rate(where: str, fields: dict[str, str]) -> float:
    text = fields.get("sampling rate (hz)")
    if text is None:
        raise RecordingError(where, "the header has no '# Sampling Rate (Hz):= ...' line; the sample rate is unknown")
    try:
        return float(text)
    except ValueError:
        raise RecordingError(where, f"sampling rate {text!r} is not a number") from None


def _units(where: str, fields: dict[str, str], labels: list[str]) -> tuple[list[str], set[int]]:
    """One unit per label, and the columns holding raw EMG counts (converted to µV when read)."""
    text = fields.get("units")
    if text:
        units = text.split("\t")
        if len(units) == 1:
            return units * len(labels), set()
        if len(units) != len(labels):
            raise RecordingError(where, f"{len(units)} units for {len(labels)} labels; give one unit per label")
        return units, set()
    bits = _resolution(where, fields)
    raw = {j for j, label in enumerate(labels) if _EMG_LABEL.search(label) and bits > 0}
    return ["uV" if j in raw else "" for j in range(len(labels))], raw


#: ADC resolutions BITalino and its peers have (0: not given).
_MAX_RESOLUTION_BITS: Final = 32


def _resolution(where: str, fields: dict[str, str]) -> int:
    text = fields.get("resolution", "0")
    try:
        bits = float(text)
    except ValueError:
        bits = math.nan
    # Checked before use: an infinite or huge resolution overflowed 2**bits in the count conversion.
    if not (math.isfinite(bits) and 0 <= bits <= _MAX_RESOLUTION_BITS and bits == int(bits)):
        raise RecordingError(
            where, f"resolution {text!r} must be a whole number of ADC bits from 0 to {_MAX_RESOLUTION_BITS}"
        )
    return int(bits)


def _signal(
    where: str, data: npt.NDArray[np.float64], kind: StreamKind, cols: list[Column], raw: set[int], bits: int
) -> Signal:
    values = np.ascontiguousarray(data[:, [c.index for c in cols]], dtype=np.float64)
    for j, c in enumerate(cols):
        if c.index in raw:
            log.warning(
                "%s: channel %r has no unit; converting %d-bit counts with the BITalino EMG transfer function "
                "(count/2^%d - 1/2) x 3.3 V / 1009",
                where,
                c.label,
                bits,
                bits,
            )
            values[:, j] = (values[:, j] / 2.0**bits - 0.5) * _BITALINO_VCC_V / _BITALINO_EMG_GAIN * 1e6
        else:
            values[:, j] *= factor(kind, c.unit)
    return Signal(kind, cols[0].rate_hz, tuple(c.label for c in cols), values)
