"""CrampWatch sensor: our own open BLE protocol for a DIY MyoWare 2.0 + ESP32/nRF52 leg sensor.

Why our own: the MyoWare examples send one ASCII reading per notification with no sequence numbers or
timestamps (devices.md §1), so losses and timing are invisible. This protocol (version 1, documented
for firmware authors in ``deploy/firmware/README.md``, reference sketch in
``deploy/firmware/crampwatch_sensor/``) batches samples, numbers packets and stamps them with the
device clock, and describes itself in an INFO characteristic so the collector needs no per-build
configuration. All integers little-endian.

Service ``7e5c0001-ae23-4ca3-9eaa-7f6a4a62c3e8``:

    DATA    7e5c0002-…  notify   one packet per notification:
            0  u8   type     0x01 EMG, 0x02 ACC
            1  u8   n        samples per channel in this packet (1..255)
            2  u16  seq      per type, +1 per packet, wraps at 65536
            4  u32  t0_us    device clock of the first sample in µs (wraps every 71.6 min)
            8  i16  samples  n x channels, sample-major (EMG: INFO channels; ACC: x, y, z)
    CONTROL 7e5c0003-…  write    0x01 start streaming, 0x00 stop
    INFO    7e5c0004-…  read     0 u8 protocol version (1) | 1 u8 EMG channels (1..8) |
                                 2 u16 EMG rate Hz | 4 u16 ACC rate Hz (0 = none) |
                                 6 f32 EMG µV per LSB | 10 f32 ACC g per LSB           (14 bytes)

Battery: the standard Battery Service (0x180F / 0x2A19).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from crampwatch.frames import Channel, StreamKind
from crampwatch.units import ACC_UNIT, EMG_UNIT

from ..profile import (
    DecoderStats,
    DeviceProfile,
    SampleBlock,
    SeqCounter,
    StreamSpec,
    Write,
    as_counts,
    register,
)

log = logging.getLogger(__name__)

_BASE = "-ae23-4ca3-9eaa-7f6a4a62c3e8"
SERVICE_UUID: Final = "7e5c0001" + _BASE
DATA_UUID: Final = "7e5c0002" + _BASE
CONTROL_UUID: Final = "7e5c0003" + _BASE
INFO_UUID: Final = "7e5c0004" + _BASE

PROTOCOL_VERSION: Final = 1
TYPE_EMG: Final = 0x01
TYPE_ACC: Final = 0x02
CMD_START: Final = b"\x01"
CMD_STOP: Final = b"\x00"

HEADER = struct.Struct("<BBHI")
INFO = struct.Struct("<BBHHff")

#: MyoWare 2.0 RAW output (gain 200) into a 12-bit, 3.3 V ADC: 3.3 V / 4096 / 200 ≈ 4.03 µV per LSB.
MYOWARE_UV_PER_LSB: Final = 3.3e6 / 4096 / 200
#: Reference sketch defaults (an INFO read overrides them).
DEFAULT_INFO_TUPLE: Final = (PROTOCOL_VERSION, 2, 1000, 100, MYOWARE_UV_PER_LSB, 1 / 4096)


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """The INFO characteristic, parsed."""

    version: int
    emg_channels: int
    emg_rate_hz: int
    acc_rate_hz: int
    emg_uv_per_lsb: float
    acc_g_per_lsb: float

    @classmethod
    def parse(cls, raw: bytes) -> SensorInfo:
        if len(raw) < INFO.size:
            raise ValueError(f"INFO is {len(raw)} bytes, protocol v1 needs {INFO.size}")
        info = cls(*INFO.unpack_from(raw))
        if info.version != PROTOCOL_VERSION:
            raise ValueError(f"protocol version {info.version}; this collector speaks {PROTOCOL_VERSION}")
        if not 1 <= info.emg_channels <= 8 or info.emg_rate_hz <= 0 or info.emg_uv_per_lsb <= 0:
            raise ValueError(f"implausible INFO {info}")
        return info

    def pack(self) -> bytes:
        return INFO.pack(
            self.version, self.emg_channels, self.emg_rate_hz, self.acc_rate_hz, self.emg_uv_per_lsb, self.acc_g_per_lsb
        )

    def streams(self) -> tuple[StreamSpec, ...]:
        names = ("calf", "tibialis", "ch3", "ch4", "ch5", "ch6", "ch7", "ch8")[: self.emg_channels]
        emg = StreamSpec(
            StreamKind.EMG, float(self.emg_rate_hz), tuple(Channel(n, EMG_UNIT, self.emg_uv_per_lsb) for n in names)
        )
        if self.acc_rate_hz <= 0:
            return (emg,)
        acc = StreamSpec(
            StreamKind.ACC, float(self.acc_rate_hz), tuple(Channel(a, ACC_UNIT, self.acc_g_per_lsb) for a in "xyz")
        )
        return (emg, acc)


DEFAULT_INFO: Final = SensorInfo(*DEFAULT_INFO_TUPLE)


@dataclass(frozen=True, slots=True)
class Packet:
    """One DATA notification, parsed."""

    type: int
    seq: int
    t0_us: int
    samples: np.ndarray  # (n, channels) int16


def decode_packet(data: bytes, emg_channels: int) -> Packet:
    """Parse one DATA notification (pure). Raises ValueError naming what is wrong."""
    if len(data) < HEADER.size:
        raise ValueError(f"{len(data)} bytes is shorter than the {HEADER.size}-byte header")
    kind, n, seq, t0_us = HEADER.unpack_from(data)
    channels = {TYPE_EMG: emg_channels, TYPE_ACC: 3}.get(kind)
    if channels is None:
        raise ValueError(f"unknown packet type 0x{kind:02x}")
    expected = HEADER.size + n * channels * 2
    if n == 0 or len(data) != expected:
        raise ValueError(f"type 0x{kind:02x} with n={n} needs {expected} bytes, got {len(data)}")
    samples = np.frombuffer(data, dtype="<i2", offset=HEADER.size).reshape(n, channels)
    return Packet(kind, seq, t0_us, samples)


class _StreamState:
    def __init__(self, kind: StreamKind, rate_hz: float) -> None:
        self.kind = kind
        self.rate_hz = rate_hz
        self.seq = SeqCounter(1 << 16)
        self.last_raw_us: int | None = None
        self.clock_us = 0  # unwrapped device clock
        self.next_us: float | None = None  # expected t0 of the next packet


class CrampWatchDecoder:
    """Stateful wrapper: per-type sequence counters and unwrapping of the 32-bit µs clock."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self.info = DEFAULT_INFO
        self._specs = DEFAULT_INFO.streams()
        self._state: dict[int, _StreamState] = {}

    def start(self, info: Mapping[str, bytes]) -> tuple[StreamSpec, ...]:
        raw = info.get(INFO_UUID)
        if raw:
            try:
                self.info = SensorInfo.parse(raw)
            except ValueError as err:
                log.error("CrampWatch sensor INFO unusable (%s); using the reference sketch's defaults", err)
                self.info = DEFAULT_INFO
        self._specs = self.info.streams()
        self._state = {TYPE_EMG: _StreamState(StreamKind.EMG, self.info.emg_rate_hz)}
        if self.info.acc_rate_hz > 0:
            self._state[TYPE_ACC] = _StreamState(StreamKind.ACC, self.info.acc_rate_hz)
        return self._specs

    def feed(self, char_uuid: str, data: bytes) -> list[SampleBlock]:
        self.stats.packets += 1
        try:
            packet = decode_packet(data, self.info.emg_channels)
        except ValueError as err:
            self.stats.malformed += 1
            log.debug("CrampWatch sensor: malformed packet: %s", err)
            return []
        state = self._state.get(packet.type)
        if state is None:
            self.stats.malformed += 1
            return []
        n = packet.samples.shape[0]
        if state.last_raw_us is not None:
            state.clock_us += (packet.t0_us - state.last_raw_us) % (1 << 32)
        else:
            state.clock_us = packet.t0_us
        state.last_raw_us = packet.t0_us
        lost_packets = state.seq.lost(packet.seq)
        lost = 0
        if lost_packets and state.next_us is not None:
            lost = max(round((state.clock_us - state.next_us) * state.rate_hz / 1e6), lost_packets)
            self.stats.lost(state.kind, lost)
        state.next_us = state.clock_us + n * 1e6 / state.rate_hz
        dtype = "int16"
        counts = as_counts(packet.samples, dtype, packet.samples.shape[1])
        return [SampleBlock(state.kind, counts, lost_before=lost, t_device_ns=state.clock_us * 1000)]


PROFILE = register(
    DeviceProfile(
        name="crampwatch",
        title="CrampWatch sensor (DIY MyoWare 2.0 + ESP32/nRF52)",
        service_uuid=SERVICE_UUID,
        local_names=("CrampWatch",),
        notify=(DATA_UUID,),
        start=(Write(CONTROL_UUID, CMD_START, response=True),),
        stop=(Write(CONTROL_UUID, CMD_STOP, response=True),),
        streams=DEFAULT_INFO.streams(),
        decoder=CrampWatchDecoder,
        read_on_connect=(INFO_UUID,),
        silence_s=3.0,
        notes="Open protocol, see deploy/firmware/README.md. Rates, channels and scales come from the "
        "sensor's INFO characteristic (reference sketch: 2 EMG ch at 1000 Hz, ~4.03 µV/LSB; ACC 100 Hz).",
    )
)
