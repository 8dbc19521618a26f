"""Which channels of a recording are raw EMG and which are ACC: the one channel choice of every reader.

EDF/BDF, CSV, XDF, BioSPPy and DataLOG readers describe their channels as :class:`Column` (EDF adds the
header's transducer and prefilter fields) and call :func:`pick_channels`. A channel is chosen the way a
clinician reading a polysomnogram would choose it:

* **Not raw EMG, skipped with a one-line log note** (never an error by itself), checked in this order:

  - the label or transducer names another signal: ECG/EKG, EEG, EOG, SaO2/SpO2/pleth/pulse,
    resp/flow/thorax/abdomen/nasal/snore, position, light, DC inputs (``DC3``), temperature/thermistor,
    event markers/hypnogram, ACC; or the label, transducer or prefilter says envelope (``envelope``,
    ``RMS``, ``integrated``, ``rectified``; a prefilter's ``HP:DC`` is not a DC input);
  - the label is made of 10-20 electrode names (``Fpz-Cz``, ``C3-A2``, ``F4-M1``: EEG; ``E1-M2``,
    ``LOC``: EOG) and does not say EMG/chin/leg;
  - the unit is not a voltage (``uV``, ``µV``, ``mV``, ``V``, ``nV``, LSL ``microvolts`` ...);
  - the sample rate is below 50 Hz (:data:`~crampwatch.formats.registry.RATE_LIMITS_HZ`): raw sEMG has
    its power at 20-450 Hz and PSG leg EMG is sampled at >= 200 Hz (AASM), so a 1 Hz "EMG submental"
    (Sleep-EDF) is an envelope/trend; or the rate is not a plausible device rate at all (<= 0, > 20 kHz);
  - the prefilter low-passes at <= 10 Hz (``LP:0.7Hz``), which removes the EMG band;
  - 32 or more labels of a letter and a number (``A1`` .. ``H32``): a BioSemi EEG cap (one note for all).

  Notes are WARNING for channels that look like EMG (label EMG/chin/leg muscle) and INFO for the rest.
* **Preference** among the raw-EMG channels left: leg EMG first (labels with tibialis/TA, gastrocnemius,
  soleus, calf, leg, ``LAT``/``RAT`` as PSG exports name the left/right anterior tibialis), then channels
  labelled EMG/chin/submental, then the remaining voltage channels. The channels not preferred are named
  in a warning.
* **ACC** = channels whose unit is an acceleration (``g``, ``mg``, ``m/s^2``); if some are labelled
  ``acc``/``accel``, only those. Exactly three axes are needed; with another number the recording is read
  without ACC and a warning says how to name three with ``--acc``. Axes ending in x, y, z are ordered so.
* The channels of one stream must share one sample rate and one *group* (in XDF the LSL stream they
  come from, because only channels of one stream share one clock). Otherwise the group with the most
  channels at the highest rate is kept and the rest dropped with a warning.
* ``emg=``/``acc=`` (``--emg``/``--acc``) name channels instead and are the final word: a named channel
  must only exist, carry a unit of the right kind, have a plausible rate, and share rate and group with
  the others named.
* No raw EMG channel left is a :class:`~crampwatch.errors.RecordingError` that lists every channel with
  why it was not used, and says the fix (``--emg LABEL``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from ..errors import RecordingError
from ..frames import StreamKind

# canonical_unit and factor live in units (the one home of conversion factors); re-exported for readers.
from ..units import canonical_unit, factor, is_acc_unit, is_emg_unit
from .registry import RATE_LIMITS_HZ, check_rate

__all__ = ["Column", "canonical_unit", "factor", "is_leg_emg", "not_raw_emg", "pick_channels"]

log = logging.getLogger(__name__)

_ACC_LABEL: Final = re.compile(r"acc", re.IGNORECASE)
#: Labels that look like EMG: used for the preference and to make a skip note a WARNING.
_EMG_LIKE_LABEL: Final = re.compile(r"emg|chin|submental", re.IGNORECASE)
#: Leg EMG as PSG exports and EMG labs name it; LAT/RAT = left/right anterior tibialis.
_LEG_LABEL: Final = re.compile(r"tibial|gastroc|soleus|calf|perone|leg", re.IGNORECASE)
_LEG_TOKENS: Final = frozenset({"ta", "lat", "rat", "lta", "rta", "tib", "gas", "gc", "sol", "lleg", "rleg"})
#: What another signal's label, transducer or prefilter says, in the order checked; the first match is the
#: reason given. Envelopes come first so an "EMG RMS" channel is called what it is.
_NOT_RAW_EMG: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"envelope|\benv\b|rms|integrat|rectif|smooth", re.I), "an envelope/RMS channel, not raw EMG"),
    (re.compile(r"ecg|ekg", re.I), "ECG"),
    (re.compile(r"eeg", re.I), "EEG"),
    (re.compile(r"eog", re.I), "EOG"),
    (re.compile(r"sao2|spo2|\bsat\b|pleth|oxim|pulse", re.I), "oximetry (SaO2/SpO2/pleth)"),
    (
        re.compile(r"resp|flow|thor|abdo|chest|belt|nasal|cannula|snor|breath|effort|pressure|cpap|co2", re.I),
        "respiration",
    ),
    (re.compile(r"position|\bpos\b", re.I), "body position"),
    (re.compile(r"light|\blux\b", re.I), "light"),
    (re.compile(r"\bdc ?\d*\b", re.I), "a DC input"),
    (re.compile(r"temp|thermo|thermis", re.I), "temperature"),
    (re.compile(r"event|marker|trigger|status|hypno|stage", re.I), "an event marker"),
    (re.compile(r"acc", re.I), "acceleration"),
)
#: 10-20 (and 10-10) EEG electrodes and references, and EOG electrodes as AASM names them (E1/E2, LOC/ROC).
_EEG_TOKEN: Final = re.compile(
    r"fp[12z]|af[3-8z]|f[1-8z]|fc[1-6z]|ft[7-9]|c[1-6z]|cp[1-6z]|t[3-8]|tp[7-9]|p[1-8z]|po[3-8z]|o[12z]|a[12]|m[12]"
)
_EOG_TOKEN: Final = re.compile(r"e[12]|loc|roc")
#: BioSemi's ABC cap layout names electrodes A1..A32, B1..B32, ...; 32 or more such labels in one file
#: are an EEG cap (MNE's 128-channel test file has A1..H32 and I1..I8), not 32 EMG sites.
_CAP_LABEL: Final = re.compile(r"[a-z]\d{1,2}", re.IGNORECASE)
_CAP_MIN_CHANNELS: Final = 32
#: A low-pass at or below this removes the sEMG band (20-450 Hz, physiology.md §7): the channel is a trend.
_ENVELOPE_LOWPASS_HZ: Final = 10.0
_LOWPASS: Final = re.compile(r"\bLP\s*:?\s*(\d+(?:\.\d+)?)\s*Hz", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Column:
    """One channel as a reader found it: ``index`` is the reader's own handle (a column number)."""

    index: int
    label: str
    unit: str
    rate_hz: float
    group: str = ""  # channels of one group share one clock, e.g. "stream 'EMG amp'" (XDF); "" = the file's
    transducer: str = ""  # EDF header fields; "" where the format has none
    prefilter: str = ""

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


def not_raw_emg(column: Column) -> tuple[str, bool] | None:
    """Why ``column`` is not a raw EMG channel, and whether the reason is its rate; None if it is one."""
    label = column.label
    # A prefilter field only speaks of filtering ("HP:DC LP:500Hz" is a raw channel without high-pass), so
    # only its envelope words count; label and transducer name the signal.
    checks = (
        ("label", label, _NOT_RAW_EMG),
        ("transducer", column.transducer, _NOT_RAW_EMG),
        ("prefilter", column.prefilter, _NOT_RAW_EMG[:1]),
    )
    for source, text, patterns in checks:
        for pattern, what in patterns:
            if text and pattern.search(text):
                quoted = "" if source == "label" else f" ({text!r})"  # the label is already in every note
                return f"{source} says {what}{quoted}", False
    if not (_EMG_LIKE_LABEL.search(label) or is_leg_emg(label)):
        tokens = [t for t in re.split(r"[^a-z0-9]+", label.lower()) if t]
        if tokens and all(_EOG_TOKEN.fullmatch(t) or _EEG_TOKEN.fullmatch(t) for t in tokens):
            kind = "EOG" if any(_EOG_TOKEN.fullmatch(t) for t in tokens) else "EEG"
            return f"{kind} (the label is made of 10-20 electrode names)", False
    if not column.is_emg_unit:
        unit = f"unit {column.unit!r}" if column.unit else "no unit"
        if _EMG_LIKE_LABEL.search(label) or is_leg_emg(label):
            # Not guessed: a wrong guess between uV and mV scales the signal by 1000.
            return f"looks like EMG but has {unit}, not a voltage (uV, mV, V); fix the unit in the file", False
        return f"{unit}, not a voltage (uV, mV, V)", False
    low, high = RATE_LIMITS_HZ[StreamKind.EMG]
    rate = column.rate_hz
    if not (math.isfinite(rate) and 0 < rate <= high):
        return f"sample rate {rate:g} Hz is not a plausible EMG rate ({low:g}..{high:g} Hz); corrupt header?", True
    if rate < low:
        return (
            f"sample rate {rate:g} Hz is far below what raw sEMG needs (>= {low:g} Hz; PSG leg EMG is sampled "
            "at >= 200 Hz): an envelope or trend channel",
            True,
        )
    lowpass = _LOWPASS.search(column.prefilter)
    if lowpass and float(lowpass[1]) <= _ENVELOPE_LOWPASS_HZ:
        return f"prefilter {column.prefilter.strip()!r} removes the EMG band (20-450 Hz): an envelope", False
    return None


def is_leg_emg(label: str) -> bool:
    """Whether ``label`` names a leg muscle or leg EMG as PSG exports do (``LAT``, ``Tib L``, ``Leg/R``)."""
    tokens = {t.rstrip("0123456789") for t in re.split(r"[^a-z0-9]+", label.lower())}
    return bool(_LEG_LABEL.search(label) or tokens & _LEG_TOKENS)


def _detect_emg(path: str, columns: Sequence[Column]) -> list[Column]:
    candidates = []
    rejected: list[tuple[Column, str, bool]] = []
    for c in columns:
        if c.is_acc_unit:
            continue  # an ACC axis; _detect_acc decides about it
        why = not_raw_emg(c)
        if why is None:
            candidates.append(c)
            continue
        rejected.append((c, *why))
        emg_like = bool(_EMG_LIKE_LABEL.search(c.label) or is_leg_emg(c.label))
        log.log(
            logging.WARNING if emg_like else logging.INFO,
            "%s: channel %r not used as EMG: %s",
            path,
            c.label,
            why[0],
        )
    cap = [c for c in candidates if _CAP_LABEL.fullmatch(c.label)]
    if len(cap) >= _CAP_MIN_CHANNELS:
        cap_why = f"one of {len(cap)} EEG cap electrodes (BioSemi ABC layout: A1..A32, B1..)"
        log.info("%s: %d channels (%s .. %s) not used as EMG: %s", path, len(cap), cap[0].label, cap[-1].label, cap_why)
        candidates = [c for c in candidates if c not in cap]
        rejected += [(c, cap_why, False) for c in cap]
    if not candidates:
        _no_emg(path, columns, rejected)
    preferred = [c for c in candidates if is_leg_emg(c.label)] or [
        c for c in candidates if _EMG_LIKE_LABEL.search(c.label)
    ]
    if preferred and len(preferred) < len(candidates):
        log.warning(
            "%s: using the %s channels (%s) and ignoring the other voltage channels (%s); "
            "name the channels with --emg to choose differently",
            path,
            "leg EMG" if is_leg_emg(preferred[0].label) else "EMG-labelled",
            ", ".join(c.label for c in preferred),
            ", ".join(c.label for c in candidates if c not in preferred),
        )
        candidates = preferred
    candidates = _one_stream(path, StreamKind.EMG, candidates)
    check_rate(path, StreamKind.EMG, candidates[0].rate_hz, channel=candidates[0].label)
    return candidates


def _no_emg(path: str, columns: Sequence[Column], rejected: Sequence[tuple[Column, str, bool]]) -> NoReturn:
    """The error for a file without raw EMG: every channel and why it was not used, and the fix."""
    by_rate = [c for c, _, rate in rejected if rate]
    if by_rate and not any(0 < c.rate_hz <= RATE_LIMITS_HZ[StreamKind.EMG][1] for c in by_rate):
        # Every would-be EMG channel has an impossible rate: the header/stream info is corrupt; say that.
        check_rate(path, StreamKind.EMG, by_rate[0].rate_hz, channel=by_rate[0].label)
    channel = by_rate[0].label if len(by_rate) == 1 else None  # the one channel that was nearly EMG
    reasons = {c.index: why for c, why, _ in rejected}
    listing = (
        "; ".join(f"{c.describe()}: {reasons.get(c.index, 'an acceleration axis')}" for c in columns)
        or "no signal channels"
    )
    raise RecordingError(
        path,
        f"no EMG channel found: no channel is raw surface EMG (a voltage unit such as uV/mV/V, sampled at "
        f">= {RATE_LIMITS_HZ[StreamKind.EMG][0]:g} Hz). The file has: {listing}. If one of them is raw EMG, "
        "name it with --emg LABEL",
        channel=channel,
    )


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
            f"{flag}: the named channels come from different streams or rates (different sample rates or "
            f"clocks: {_listing(chosen)}); "
            "name channels of one stream",
        )
    if kind is StreamKind.ACC and len(chosen) != 3:
        raise RecordingError(path, f"{flag} needs exactly 3 labels (the x, y, z axes), got {len(chosen)}")
    check_rate(path, kind, chosen[0].rate_hz, channel=chosen[0].label)
    return chosen
