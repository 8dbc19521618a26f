"""Device profiles as data, the decoder interface, and the registry of supported wearables.

A :class:`DeviceProfile` holds everything static about one kind of wearable: how to find it (service UUID,
advertised names), which characteristics to subscribe to (always *before* the start command), which
bytes start and stop streaming, the streams it produces (rate, channels, units and count scales) and a
factory for its :class:`Decoder`. Adding a device = adding one module under
``collector/ble/profiles/`` that calls :func:`register`.

Decoders turn notification bytes into :class:`SampleBlock` s in counts with the stream's
:class:`~crampwatch.frames.Channel` scales (so values become µV or g without re-quantising), and
report device-side losses they can see from the device's own counters (packet ids, sequence nibbles,
timestamps) as ``lost_before``. They do not make :class:`~crampwatch.frames.Frame` s directly: one
notification holds 2-20 samples, so the :class:`~collector.ble.framer.Framer` batches blocks into frames of
about 0.25 s and numbers them for the wire. The protocol maths live in pure functions in each profile
module (``decode_*``); the decoder classes only carry the state a protocol needs between packets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from crampwatch.frames import Channel, StreamKind

from .errors import UnknownProfileError

#: Standard GATT characteristics most wearables expose.
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
SOFTWARE_REVISION_UUID = "00002a28-0000-1000-8000-00805f9b34fb"

Counts = npt.NDArray[Any]  # integer counts (int16 or int32), shape (n_samples, n_channels)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One stream a device produces: kind, nominal rate, and its channels (unit + count scale)."""

    kind: StreamKind
    rate_hz: float
    channels: tuple[Channel, ...]
    dtype: str = "int16"  # numpy dtype of the counts: int16 or int32


@dataclass(frozen=True, slots=True)
class Write:
    """A command written to a characteristic (start, stop, keep-awake)."""

    char_uuid: str
    data: bytes
    response: bool = False
    pause_s: float = 0.0  # wait this long afterwards (some devices need time to switch modes)


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """Consecutive samples of one stream decoded from one notification.

    Attributes:
        kind: the stream.
        data: ``(n_samples, n_channels)`` counts, in the dtype and channel order of the stream's spec.
        lost_before: samples the device's counters say were lost just before this block (0 = none).
        t_device_ns: the device clock's time of the first sample, if the device sends timestamps.
    """

    kind: StreamKind
    data: Counts
    lost_before: int = 0
    t_device_ns: int | None = None


@dataclass
class DecoderStats:
    """What a decoder saw: packets, packets it could not use, and device-side gaps."""

    packets: int = 0
    malformed: int = 0
    gaps: int = 0
    lost_samples: dict[StreamKind, int] = field(default_factory=dict)

    def lost(self, kind: StreamKind, samples: int) -> None:
        self.gaps += 1
        self.lost_samples[kind] = self.lost_samples.get(kind, 0) + samples


class Decoder(Protocol):
    """Turns the notifications of one connection into sample blocks.

    ``start`` is called on every (re)connection before any notification, with the values of the
    profile's ``read_on_connect`` characteristics; it resets all state (devices such as the Ganglion
    reset on connect) and returns the streams of this connection (normally the profile's).
    ``feed`` gets one notification; it raises nothing for bad bytes: it counts them in ``stats``.
    """

    stats: DecoderStats

    def start(self, info: Mapping[str, bytes]) -> tuple[StreamSpec, ...]: ...

    def feed(self, char_uuid: str, data: bytes) -> list[SampleBlock]: ...


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """Static facts about one kind of wearable; see the module docstring.

    Attributes:
        name: registry key used on the command line (``--profile ganglion``).
        title: human name.
        service_uuid: the vendor service; used to recognise the device in scans and after connecting.
        local_names: advertised name prefixes that identify the device (case-insensitive).
        notify: characteristics to subscribe to, in order, before the start command.
        start: commands that start streaming (sent after every (re)connection).
        stop: commands that stop streaming (sent on a clean shutdown).
        streams: what the device streams (rates, channels, units, scales).
        decoder: factory for a fresh decoder.
        read_on_connect: characteristics read after connecting and passed to ``Decoder.start``.
        keepalive: command re-sent every ``keepalive_s`` seconds while streaming (devices that sleep).
        silence_s: no notification for this long while connected = stalled link: reconnect.
        notes: assumptions and caveats a user should know (shown by ``cramp-collector profiles``).
    """

    name: str
    title: str
    service_uuid: str
    local_names: tuple[str, ...]
    notify: tuple[str, ...]
    start: tuple[Write, ...]
    stop: tuple[Write, ...]
    streams: tuple[StreamSpec, ...]
    decoder: Callable[[], Decoder]
    read_on_connect: tuple[str, ...] = ()
    battery_uuid: str | None = BATTERY_LEVEL_UUID
    keepalive: Write | None = None
    keepalive_s: float = 60.0
    silence_s: float = 5.0
    notes: str = ""

    def stream(self, kind: StreamKind) -> StreamSpec | None:
        return next((s for s in self.streams if s.kind is kind), None)

    def matches(self, name: str | None, service_uuids: list[str]) -> bool:
        """True if an advertisement (local name, service UUIDs) looks like this device."""
        if self.service_uuid.lower() in (u.lower() for u in service_uuids):
            return True
        return name is not None and any(name.lower().startswith(p.lower()) for p in self.local_names)


class SeqCounter:
    """Detects gaps in a device's wrapping packet counter that counts ``modulus`` values, +1 per packet.

    ``lost(seq)`` returns how many packets were skipped since the previous one (0 for the first). With a
    wide counter (``wide=True``, e.g. 16-bit) a repeat is a duplicate and a jump of more than half the
    range is a device restart, not a loss. With a narrow counter (Myo's 4 characteristics, BITalino's
    4-bit nibble) every value is possible after a loss, so a repeat means ``modulus - 1`` lost packets.
    Losses of a whole multiple of ``modulus`` packets are invisible to any wrapping counter.
    """

    def __init__(self, modulus: int, *, wide: bool = True) -> None:
        self.modulus = modulus
        self.wide = wide
        self.last: int | None = None

    def reset(self) -> None:
        self.last = None

    def lost(self, seq: int) -> int:
        last, self.last = self.last, seq
        if last is None:
            return 0
        delta = (seq - last) % self.modulus
        if self.wide and (delta == 0 or delta > self.modulus // 2):
            return 0
        return (delta or self.modulus) - 1


_REGISTRY: dict[str, DeviceProfile] = {}


def register(profile: DeviceProfile) -> DeviceProfile:
    """Add a profile to the registry (each profile module calls this once at import)."""
    if profile.name in _REGISTRY and _REGISTRY[profile.name] is not profile:
        raise ValueError(f"device profile {profile.name!r} is registered twice")
    _REGISTRY[profile.name] = profile
    return profile


def get_profile(name: str) -> DeviceProfile:
    """The profile registered under ``name``; UnknownProfileError lists the known ones."""
    from . import profiles  # noqa: F401  (importing the package registers every profile)

    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise UnknownProfileError(name, sorted(_REGISTRY)) from None


def all_profiles() -> list[DeviceProfile]:
    from . import profiles  # noqa: F401

    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def as_counts(values: npt.ArrayLike, dtype: str, n_channels: int) -> Counts:
    """A contiguous ``(n, n_channels)`` array of counts in ``dtype``."""
    arr: Counts = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1, n_channels))
    return arr
