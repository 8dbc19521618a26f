"""MQTT topic layout, defined once for both services.

    <prefix>/<patient>/<device>/<stream>     binary frames (crampwatch.wire), stream is "emg" or "acc"
    <prefix>/<patient>/<device>/status       retained collector status (JSON)
    <prefix>/<patient>/events                detected events (JSON), one message per event

The prefix defaults to ``cramp/v1``. Patient ids are pseudonyms; they and device ids must be single
topic levels made of letters, digits, ``-``, ``_`` and ``.``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    # Imported where used: crampwatch.frames imports numpy, which `--help` and settings must not wait for.
    from .frames import StreamKind

DEFAULT_PREFIX = "cramp/v1"
#: Longest patient or device id. Ids become topic levels and InfluxDB tags; a bound keeps every topic,
#: tag and log line short, and makes a flood of long fake ids cost little.
MAX_ID_LEN = 64
_ID = re.compile(rf"[A-Za-z0-9_.\-]{{1,{MAX_ID_LEN}}}")


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid single topic level, else raise ConfigError saying what is wrong.

    The one definition of an id, for settings and for the ids the detector reads from topics. Only letters,
    digits, ``-``, ``_`` and ``.`` pass, so no MQTT wildcard (``+``, ``#``), no level separator (``/``),
    nothing InfluxDB line protocol escapes (``\\``, space, ``,``, ``=``, ``"``: two such ids could land
    on the same tag) and no control character. ``fullmatch``, not ``match``: ``$`` would let a trailing
    newline through.
    """
    if _ID.fullmatch(value):
        return value
    if not value:
        problem = "is empty"
    elif len(value) > MAX_ID_LEN:
        problem = f"is {len(value)} characters long, more than {MAX_ID_LEN}"
    else:
        bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "_.-"))})
        problem = "contains " + ", ".join(repr(c) for c in bad)
    shown = value if len(value) <= MAX_ID_LEN else value[:MAX_ID_LEN] + "..."
    raise ConfigError(f"{what} {shown!r} {problem}: use 1-{MAX_ID_LEN} letters, digits, '-', '_' or '.'")


def check_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if not prefix or any(c in prefix for c in "#+") or "//" in prefix:
        raise ConfigError(f"topic prefix {prefix!r} is invalid: use levels like 'cramp/v1', no '+' or '#'")
    return prefix


@dataclass(frozen=True, slots=True)
class StreamTopic:
    """Identity of one data stream, parsed from or rendered to a topic."""

    patient: str
    device: str
    kind: StreamKind

    def render(self, prefix: str) -> str:
        return f"{prefix}/{self.patient}/{self.device}/{self.kind.value}"

    @classmethod
    def parse(cls, topic: str, prefix: str) -> StreamTopic | None:
        """The stream a data topic names, or None if ``topic`` is not a data topic under ``prefix``."""
        if not topic.startswith(prefix + "/"):
            return None
        parts = topic[len(prefix) + 1 :].split("/")
        if len(parts) != 3:
            return None
        patient, device, stream = parts
        from .frames import StreamKind

        try:
            kind = StreamKind(stream)
        except ValueError:
            return None
        return cls(patient, device, kind)


def data_subscriptions(prefix: str) -> list[str]:
    """Wildcards matching every data stream of every patient and device (not status topics)."""
    from .frames import StreamKind

    return [f"{prefix}/+/+/{kind.value}" for kind in StreamKind]


def events_topic(prefix: str, patient: str) -> str:
    return f"{prefix}/{patient}/events"


def status_topic(prefix: str, patient: str, device: str) -> str:
    return f"{prefix}/{patient}/{device}/status"
