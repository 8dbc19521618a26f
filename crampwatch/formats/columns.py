"""Which channels of a labelled, unit-tagged file are EMG and which are ACC (CSV, XDF, text readers).

EDF has its own copy of these rules in :mod:`crampwatch.formats.edf`; the readers added later (CSV, XDF,
BioSPPy, DataLOG) describe their channels as :class:`Column` and call :func:`pick_channels`, so the rules
are stated once for all of them and match EDF's:

* **EMG** = channels whose unit is a voltage (``uV``, ``µV``, ``mV``, ``V``, ``nV``; the LSL spellings
  ``microvolts``/``millivolts``/``volts`` too), except those whose label names another signal
  (ECG/EKG, EEG, EOG, ACC). If some of them are labelled ``EMG``, only those are used.
* **ACC** = channels whose unit is an acceleration (``g``, ``mg``, ``m/s^2``); if some are labelled
  ``acc``/``accel``, only those. Exactly three axes are needed; with another number the recording is read
  without ACC and a warning says how to name three with ``--acc``. Axes ending in x, y, z are ordered so.
* The channels of one stream must share one sample rate and one *group* (in XDF the LSL stream they
  come from, because only channels of one stream share one clock). Otherwise the group with the most
  channels at the highest rate is kept and the rest dropped with a warning.
* ``emg=``/``acc=`` (``--emg``/``--acc``) name channels instead; a named channel must exist, carry a unit
  of the right kind, and share rate and group with the others named.
* A channel labelled EMG whose unit is not a voltage is skipped with a warning (a wrong guess would scale
  it by 1000); no EMG at all is a :class:`~crampwatch.errors.RecordingError` listing every channel.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..errors import RecordingError
from ..frames import StreamKind

# canonical_unit and factor live in units (the one home of conversion factors); re-exported for readers.
from ..units import canonical_unit, factor, is_acc_unit, is_emg_unit
from .registry import check_rate

__all__ = ["Column", "canonical_unit", "factor", "pick_channels"]

log = logging.getLogger(__name__)

_EMG_LABEL: Final = re.compile(r"emg", re.IGNORECASE)
_OTHER_SIGNAL_LABEL: Final = re.compile(r"ecg|ekg|eeg|eog|acc", re.IGNORECASE)
_ACC_LABEL: Final = re.compile(r"acc", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Column:
    """One channel as a reader found it: ``index`` is the reader's own handle (a column number)."""

    index: int
    label: str
    unit: str
    rate_hz: float
    group: str = ""  # channels of one group share one clock, e.g. "stream 'EMG amp'" (XDF); "" = the file's

    def describe(self) -> str:
        where = f", {self.group}" if self.group else ""
        return f"{self.label!r} ({self.unit or 'no unit'}, {self.rate_hz:g} Hz{where})"

    @property
    def is_emg_unit(self) -> bool:
        return is_emg_unit(canonical_unit(self.unit))

    @property
    def is_acc_unit(self) -> bool:
        return is_acc_unit(canonical_unit(self.unit))


def pick_channels(
    path: str, columns: Sequence[Column], *, emg: Sequence[str] | None, acc: Sequence[str] | None
) -> tuple[list[Column], list[Column]]:
    """The EMG columns (never empty) and the ACC columns (three, or none), by the module's rules."""
    emg_cols = _detect_emg(path, columns) if emg is None else _named(path, columns, emg, StreamKind.EMG)
    if acc is None:
        return emg_cols, _detect_acc(path, columns)
    return emg_cols, _named(path, columns, acc, StreamKind.ACC) if acc else []


def _listing(columns: Sequence[Column]) -> str:
    return ", ".join(c.describe() for c in columns) or "no signal channels"


def _detect_emg(path: str, columns: Sequence[Column]) -> list[Column]:
    candidates = []
    for c in columns:
        if _OTHER_SIGNAL_LABEL.search(c.label):
            continue
        if c.is_emg_unit:
            candidates.append(c)
        elif _EMG_LABEL.search(c.label):
            log.warning(
                "%s: channel %r looks like EMG but its unit %r is not a voltage (uV, mV, V); skipped. "
                "Fix the unit in the file to use it",
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
        raise RecordingError(
            path,
            "no EMG channel found. EMG is recognised by a voltage unit (uV, mV, V); the file has: "
            f"{_listing(columns)}. Name the EMG channel(s) with --emg LABEL, or give them a voltage unit",
        )
    candidates = _one_stream(path, StreamKind.EMG, candidates)
    check_rate(path, StreamKind.EMG, candidates[0].rate_hz, channel=candidates[0].label)
    return candidates


def _detect_acc(path: str, columns: Sequence[Column]) -> list[Column]:
    candidates = [c for c in columns if c.is_acc_unit]
    labelled = [c for c in candidates if _ACC_LABEL.search(c.label)]
    if labelled:
        candidates = labelled
    if not candidates:
        return []
    candidates = _one_stream(path, StreamKind.ACC, candidates)
    if len(candidates) != 3:
        log.warning(
            "%s: found %d acceleration channel(s) (%s) but need exactly 3 axes; reading without ACC. "
            "Name the x, y, z axes with --acc X Y Z",
            path,
            len(candidates),
            _listing(candidates),
        )
        return []
    check_rate(path, StreamKind.ACC, candidates[0].rate_hz, channel=candidates[0].label)
    axes = [c.label.lower()[-1:] for c in candidates]
    if sorted(axes) == ["x", "y", "z"]:
        candidates = sorted(candidates, key=lambda c: c.label.lower()[-1:])
    return candidates


def _one_stream(path: str, kind: StreamKind, columns: list[Column]) -> list[Column]:
    """Keep the channels of one group and rate: the highest rate, then the group with most channels."""
    top = max(c.rate_hz for c in columns)
    at_top = [c for c in columns if c.rate_hz == top]
    groups: dict[str, list[Column]] = {}
    for c in at_top:
        groups.setdefault(c.group, []).append(c)
    kept = max(groups.values(), key=len)  # the first of equally large groups: file order
    if len(kept) < len(columns):
        log.warning(
            "%s: %s channels must share one sample rate and stream; keeping %s, dropping %s. "
            "Name the channels with --%s to choose differently",
            path,
            kind.value.upper(),
            _listing(kept),
            _listing([c for c in columns if c not in kept]),
            kind.value,
        )
    return kept


def _named(path: str, columns: Sequence[Column], labels: Sequence[str], kind: StreamKind) -> list[Column]:
    """The channels named by --emg/--acc, checked for existence, unit, and a common rate and stream."""
    flag = f"--{kind.value}"
    chosen = []
    for label in labels:
        matches = [c for c in columns if c.label == label.strip()]
        if not matches:
            matches = [c for c in columns if c.label.lower() == label.strip().lower()]
        if len(matches) != 1:
            problem = "no channel has this label" if not matches else f"{len(matches)} channels have this label"
            raise RecordingError(path, f"{flag}: {problem}; the file has: {_listing(columns)}", channel=label)
        c = matches[0]
        if kind is StreamKind.EMG and not c.is_emg_unit:
            raise RecordingError(
                path,
                f"{flag}: unit {c.unit!r} is not a voltage (uV, mV, V), so this channel cannot be EMG; "
                "pick another channel or fix the unit in the file",
                channel=c.label,
            )
        if kind is StreamKind.ACC and not c.is_acc_unit:
            raise RecordingError(
                path,
                f"{flag}: unit {c.unit!r} is not an acceleration (g, mg, m/s^2); pick another channel or "
                "fix the unit in the file",
                channel=c.label,
            )
        chosen.append(c)
    if len({(c.rate_hz, c.group) for c in chosen}) > 1:
        raise RecordingError(
            path,
            f"{flag}: the named channels come from different streams or rates ({_listing(chosen)}); "
            "name channels of one stream",
        )
    if kind is StreamKind.ACC and len(chosen) != 3:
        raise RecordingError(path, f"{flag} needs exactly 3 labels (the x, y, z axes), got {len(chosen)}")
    check_rate(path, kind, chosen[0].rate_hz, channel=chosen[0].label)
    return chosen
