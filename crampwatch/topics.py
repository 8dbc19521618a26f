"""MQTT topic layout, defined once for both services.

    <prefix>/<patient>/<device>/<stream>     binary frames (crampwatch.wire), stream is "emg" or "acc"
    <prefix>/<patient>/<device>/status       retained collector status (JSON)
    <prefix>/<patient>/<device>/confirm      detector -> collector: frames journalled (crampwatch.wire)
    <prefix>/<patient>/events                detected events (JSON), one message per event

The prefix defaults to ``cramp/v1``. Patient ids are pseudonyms; they and device ids must be single
topic levels made of letters, digits, ``-``, ``_`` and ``.``.

Sharding (``shards`` > 0, the same number in every collector and detector): a patient's device topics
(frames, status) move one level down, under its shard ``s<k>``, k = :func:`shard_of` (a stable hash of
the patient id)::

    <prefix>/s<k>/<patient>/<device>/<stream>    k = crc32(patient) mod shards
    <prefix>/s<k>/<patient>/<device>/status

so a detector process subscribes to exactly the shards it owns, with plain wildcards, and every
patient's streams reach one process. Events stay on ``<prefix>/<patient>/events``. An ACL that lets a
collector write its patient's topics becomes ``pattern write <prefix>/+/%u/#``. With ``shards`` 0 (the
default) there is no shard level.
"""

from __future__ import annotations

import re
import zlib
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


def confirm_topic(prefix: str, patient: str, device: str) -> str:
    """Where the detector confirms a device's journalled frames and that device's collector listens.

    In the device's own namespace (``prefix`` is the device prefix, with its shard level under sharding),
    so the broker ACL can let each device read its own confirmations and nobody else's.
    """
    return f"{prefix}/{patient}/{device}/confirm"


def device_of_data_topic(topic: str, prefix: str, shards: int) -> tuple[int | None, str, StreamTopic] | None:
    """``(shard, device prefix, stream)`` of a data topic, with or without a shard level; None for other
    topics.

    The shard is None without sharding. The device prefix is ``prefix`` itself, or ``<prefix>/s<k>`` under
    sharding: where the device's other topics (status, confirm) live.
    """
    shard = None
    if shards:
        found = parse_shard(topic, prefix)
        if found is None:
            return None
        shard, prefix = found
    stream = StreamTopic.parse(topic, prefix)
    return None if stream is None else (shard, prefix, stream)


def events_topic(prefix: str, patient: str) -> str:
    return f"{prefix}/{patient}/events"


def status_topic(prefix: str, patient: str, device: str) -> str:
    return f"{prefix}/{patient}/{device}/status"


#: Most shards: a shard is a topic level and an MQTT subscription per owning process; 1024 is far beyond
#: the processes a deployment runs, and keeps a typo (10000) from making that many subscriptions.
MAX_SHARDS = 1024


def shard_of(patient: str, shards: int) -> int:
    """The shard of a patient: crc32 of its id modulo ``shards``; the same in every process, host and version.

    By patient, not device: a patient's devices and its events topic stay with one process.
    """
    return zlib.crc32(patient.encode()) % shards


def shard_prefix(prefix: str, shard: int) -> str:
    return f"{prefix}/s{shard}"


def device_prefix(prefix: str, patient: str, shards: int) -> str:
    """The prefix a patient's device topics go under: ``prefix`` itself, or its shard's with sharding on."""
    return shard_prefix(prefix, shard_of(patient, shards)) if shards > 0 else prefix


def parse_shard(topic: str, prefix: str) -> tuple[int, str] | None:
    """``(shard, shard prefix)`` of a topic under ``<prefix>/s<k>/``, or None if it has no shard level."""
    if not topic.startswith(prefix + "/s"):
        return None
    level = topic[len(prefix) + 2 :].split("/", 1)[0]
    if not level.isdigit() or (len(level) > 1 and level[0] == "0") or "/" not in topic[len(prefix) + 2 :]:
        return None
    return int(level), shard_prefix(prefix, int(level))


def parse_shard_set(text: str, shards: int, *, what: str = "own shards", empty: str = "all") -> frozenset[int]:
    """Shards from ``"0-3,7"`` or ``"all"``; empty text means ``empty`` ("all" or "none").

    ``what`` names the setting in errors. Raises ConfigError saying what is wrong.
    """
    if shards <= 0:
        if text.strip():
            raise ConfigError(f"{what} {text!r} given without shards: set shards (the shard count) too")
        return frozenset()
    if text.strip() == "all" or (not text.strip() and empty == "all"):
        return frozenset(range(shards))
    if not text.strip():
        return frozenset()
    owned: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"{what} {text!r}: {part.strip()!r} is not a shard or range like 0-3, or 'all'") from None
        if not 0 <= first <= last < shards:
            raise ConfigError(f"{what} {text!r}: {part.strip()!r} is outside 0-{shards - 1} (shards is {shards})")
        owned.update(range(first, last + 1))
    return frozenset(owned)


def format_shard_set(owned: frozenset[int] | set[int]) -> str:
    """The text :func:`parse_shard_set` reads back: ``{0, 1, 2, 5}`` -> ``"0-2,5"``."""
    runs: list[tuple[int, int]] = []
    for n in sorted(owned):
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
