"""Physical units the pipeline understands, and conversion to the canonical ones.

The detector works in microvolts for EMG and in g for acceleration. Anything else is converted once, at
the boundary (wire decode or file read), and an unknown unit is an error rather than a silent guess.
"""

from __future__ import annotations

from typing import Final

from .errors import CrampWatchError

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
