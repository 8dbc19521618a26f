"""Polar H10 / Verity Sense: accelerometer through the Polar Measurement Data (PMD) service.

Sources: ``polarofficial/polar-ble-sdk`` ``documentation/products/PolarH10.md``, ``PolarVeritySense.md``,
``technical_documentation/SdkModeExplained.md``, issue #360 (start bytes) and ``fsmeraldi/bleakheart``
``core.py`` (a bleak client). No EMG: the best commodity accelerometer, to pair with an EMG device. To
put both on one detector device, run two collectors with the same ``--device`` (their times are on
the host clock, see :mod:`collector.ble.framer`).

Service ``fb005c80-02e7-f387-1cad-8acd2d8df0c8``; control point ``fb005c81-…`` (read/write/indicate),
data ``fb005c82-…`` (notify). Control point commands: ``<op> <type> (<setting id> <count> <value LE>)…``
with op 0x01 get settings, 0x02 start, 0x03 stop; type 2 = ACC; setting ids 0 rate, 1 resolution,
2 range. Start used here (polar-ble-sdk #360): ``02 02 02 01 08 00 00 01 c8 00 01 01 10 00`` = ACC,
±8 g, 200 Hz, 16 bit. The reply is an indication ``F0 <op> <type> <error> …``; errors are logged by
name.

Data notification: ``type (1) | u64 LE timestamp in ns | frame type (1) | payload``. Frame type 0x01:
``n x (int16 x, y, z)`` in **mG**. Bit 7 of the frame type marks delta compression (Verity Sense): a
reference sample (channels x resolution bits, little-endian, signed) then blocks of
``u8 delta bit width | u8 sample count | packed signed deltas`` (bits LSB-first). The timestamp is that
of the *last* sample in the frame; lost notifications show up as a timestamp jump.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from typing import Final

import numpy as np

from crampwatch.frames import Channel, StreamKind
from crampwatch.units import ACC_UNIT

from ..profile import DecoderStats, DeviceProfile, SampleBlock, StreamSpec, Write, as_counts, register

log = logging.getLogger(__name__)

SERVICE_UUID: Final = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_UUID: Final = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID: Final = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

MEAS_ACC: Final = 0x02
ACC_RATE_HZ: Final = 200.0
ACC_RANGE_G: Final = 8
START_ACC: Final = bytes.fromhex("02 02 02 01 08 00 00 01 c8 00 01 01 10 00")
STOP_ACC: Final = bytes([0x03, MEAS_ACC])
G_PER_MG: Final = 1e-3

ERRORS: Final = {
    0: "success",
    1: "invalid op code",
    2: "invalid measurement type",
    3: "not supported",
    4: "invalid length",
    5: "invalid parameter",
    6: "already in state",
    7: "invalid resolution",
    8: "invalid sample rate",
    9: "invalid range",
    10: "invalid MTU",
    11: "invalid number of channels",
    12: "invalid state",
    13: "device in charger",
}

_HEADER = struct.Struct("<BQB")
#: Seconds between 1970-01-01 and 2000-01-01, the epoch of Polar sensor timestamps.
POLAR_EPOCH_OFFSET_S: Final = 946_684_800


def start_command(rate_hz: int = 200, range_g: int = ACC_RANGE_G, resolution: int = 16) -> bytes:
    """The PMD start-ACC request for the given settings."""
    settings = bytes([0x02, 0x01]) + range_g.to_bytes(2, "little")
    settings += bytes([0x00, 0x01]) + rate_hz.to_bytes(2, "little")
    settings += bytes([0x01, 0x01]) + resolution.to_bytes(2, "little")
    return bytes([0x02, MEAS_ACC]) + settings


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def decode_delta_frame(payload: bytes, channels: int, resolution: int) -> np.ndarray:
    """Polar delta-compressed samples: reference sample, then (width, count, packed deltas) blocks."""
    ref_bytes = (resolution + 7) // 8
    need = channels * ref_bytes
    if len(payload) < need:
        raise ValueError(f"compressed frame shorter than its {need}-byte reference sample")
    current = [
        int.from_bytes(payload[i * ref_bytes : (i + 1) * ref_bytes], "little", signed=True) for i in range(channels)
    ]
    samples = [list(current)]
    offset = need
    while offset < len(payload):
        if offset + 2 > len(payload):
            raise ValueError("truncated delta block header")
        width, count = payload[offset], payload[offset + 1]
        offset += 2
        n_bytes = (width * count * channels + 7) // 8
        if width == 0 or offset + n_bytes > len(payload):
            raise ValueError(f"delta block (width {width}, {count} samples) runs past the frame")
        bits = int.from_bytes(payload[offset : offset + n_bytes], "little")
        offset += n_bytes
        pos = 0
        for _ in range(count):
            for ch in range(channels):
                current[ch] += _signed((bits >> pos) & ((1 << width) - 1), width)
                pos += width
            samples.append(list(current))
    return np.array(samples, dtype=np.int64)


def decode_data(data: bytes) -> tuple[int, int, np.ndarray]:
    """One PMD data notification: (measurement type, timestamp ns of the last sample, (n, 3) mG)."""
    if len(data) < _HEADER.size:
        raise ValueError(f"{len(data)} bytes is shorter than the {_HEADER.size}-byte PMD header")
    meas, timestamp, frame_type = _HEADER.unpack_from(data)
    if meas != MEAS_ACC:
        raise ValueError(f"measurement type {meas} is not ACC ({MEAS_ACC})")
    payload = data[_HEADER.size :]
    compressed, kind = bool(frame_type & 0x80), frame_type & 0x7F
    widths = {0: 1, 1: 2, 2: 3}
    if kind not in widths:
        raise ValueError(f"ACC frame type {frame_type:#04x} not supported")
    if compressed:
        return meas, timestamp, decode_delta_frame(payload, 3, 8 * widths[kind])
    width = widths[kind]
    if len(payload) == 0 or len(payload) % (3 * width):
        raise ValueError(f"ACC payload of {len(payload)} bytes is not whole {3 * width}-byte samples")
    values = [int.from_bytes(payload[i : i + width], "little", signed=True) for i in range(0, len(payload), width)]
    return meas, timestamp, np.array(values, dtype=np.int64).reshape(-1, 3)


class PolarDecoder:
    """Control point replies and ACC frames; losses are seen as timestamp jumps."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self.last_error: int | None = None
        self._next_ns: float | None = None

    def start(self, info: Mapping[str, bytes]) -> tuple[StreamSpec, ...]:
        self._next_ns = None
        return PROFILE.streams

    def feed(self, char_uuid: str, data: bytes) -> list[SampleBlock]:
        if char_uuid.lower() == CONTROL_UUID:
            self._control(data)
            return []
        self.stats.packets += 1
        try:
            _, last_ns, samples = decode_data(data)
        except ValueError as err:
            self.stats.malformed += 1
            log.debug("Polar PMD: unusable frame: %s", err)
            return []
        n = samples.shape[0]
        period = 1e9 / ACC_RATE_HZ
        first_ns = last_ns - round((n - 1) * period)
        lost = 0
        if self._next_ns is not None:
            lost = max(0, round((first_ns - self._next_ns) / period))
            if lost:
                self.stats.lost(StreamKind.ACC, lost)
        self._next_ns = last_ns + period
        clipped = np.clip(samples, -32768, 32767)
        return [SampleBlock(StreamKind.ACC, as_counts(clipped, "int16", 3), lost_before=lost, t_device_ns=first_ns)]

    def _control(self, data: bytes) -> None:
        if len(data) >= 4 and data[0] == 0xF0:
            op, meas, error = data[1], data[2], data[3]
            self.last_error = error
            if error:
                log.error(
                    "Polar sensor refused command %#04x for measurement %d: %s",
                    op,
                    meas,
                    ERRORS.get(error, f"error {error}"),
                )


PROFILE = register(
    DeviceProfile(
        name="polar",
        title="Polar H10 / Verity Sense (PMD accelerometer)",
        service_uuid=SERVICE_UUID,
        local_names=("Polar",),
        notify=(CONTROL_UUID, DATA_UUID),
        start=(Write(CONTROL_UUID, START_ACC, response=True),),
        stop=(Write(CONTROL_UUID, STOP_ACC, response=True),),
        streams=(StreamSpec(StreamKind.ACC, ACC_RATE_HZ, tuple(Channel(a, ACC_UNIT, G_PER_MG) for a in "xyz")),),
        decoder=PolarDecoder,
        silence_s=3.0,
        notes="Accelerometer only (200 Hz, ±8 g, mG); pair with an EMG device using the same --device. "
        "The H10 streams only while worn on its strap.",
    )
)
