"""Physical units the pipeline understands, and the one place their conversion factors live.

The detector works in microvolts for EMG and in g for acceleration. Anything else is converted once, at
the boundary (a stream's first frame in :mod:`crampwatch.continuity`, or a file read in
:mod:`crampwatch.formats`), by a factor from :func:`factor`; an unknown unit is an error rather than a
silent guess. (:meth:`crampwatch.frames.Frame.values` only undoes the wire's count scaling: its result is
still in each channel's own unit.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

from .errors import CrampWatchError
from .frames import StreamKind

#: Canonical unit for each stream kind.
EMG_UNIT: Final = "uV"
ACC_UNIT: Final = "g"

STANDARD_GRAVITY: Final = 9.80665

# Factor that turns a value in the key unit into the canonical unit of its kind.
_EMG_FACTORS: Final[dict[str, float]] = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}
_ACC_FACTORS: Final[dict[str, float]] = {
    "g": 1.0,
    "mg": 1e-3,
    "m/s^2": 1.0 / STANDARD_GRAVITY,
    "m/s2": 1.0 / STANDARD_GRAVITY,
    "m/s²": 1.0 / STANDARD_GRAVITY,
}


#: Spellings used by LSL/XDF meta-data and lab software, mapped to the ones above.
_ALIASES: Final = {
    "microvolts": "uV",
    "microvolt": "uV",
    "millivolts": "mV",
    "millivolt": "mV",
    "volts": "V",
    "volt": "V",
    "nanovolts": "nV",
    "m/s/s": "m/s^2",
    "m/s**2": "m/s^2",
    "ms^-2": "m/s^2",
    "m s^-2": "m/s^2",
}


class UnitError(CrampWatchError):
    """A unit string is not one the pipeline knows for that kind of signal."""


def _key(unit: str) -> str:
    return unit.strip().lower().replace(" ", "")


def is_emg_unit(unit: str) -> bool:
    return _key(unit) in _EMG_FACTORS


def is_acc_unit(unit: str) -> bool:
    return _key(unit) in _ACC_FACTORS


def to_microvolts(unit: str) -> float:
    """Factor converting ``unit`` to µV, or UnitError naming the accepted units."""
    try:
        return _EMG_FACTORS[_key(unit)]
    except KeyError:
        raise UnitError(f"unknown EMG unit {unit!r}; use one of uV, mV, V") from None


def to_g(unit: str) -> float:
    """Factor converting ``unit`` to g, or UnitError naming the accepted units."""
    try:
        return _ACC_FACTORS[_key(unit)]
    except KeyError:
        raise UnitError(f"unknown acceleration unit {unit!r}; use one of g, mg, m/s^2") from None


def canonical_unit(unit: str) -> str:
    """``unit`` with LSL/XDF spellings (``microvolts``) mapped to the short ones (``uV``)."""
    u = unit.strip()
    return _ALIASES.get(u.lower(), u)


def factor(kind: StreamKind, unit: str) -> float:
    """Factor from ``unit`` (any spelling :func:`canonical_unit` knows) to µV (EMG) or g (ACC)."""
    u = canonical_unit(unit)
    return to_microvolts(u) if kind is StreamKind.EMG else to_g(u)


def factors(kind: StreamKind, units: Iterable[str]) -> npt.NDArray[np.float64]:
    """Per-channel factors to the canonical unit of ``kind``; multiply values in those units by them."""
    return np.array([factor(kind, u) for u in units], dtype=np.float64)
