"""OpenBCI Ganglion: 4 channels of µV-calibrated EMG at 200 Hz and an 8-bit accelerometer.

Sources: OpenBCI Documentation ``Ganglion/08-Ganglion_Data_Format.md`` (packet ids, compression, scale)
and BrainFlow ``ganglion_native.cpp`` (the reference decoder for firmware 2 and 3, accelerometer axes
and scale). 20-byte notifications, byte 0 = packet id:

    fw 2   0         raw: 4 x int24 big-endian (seeds the deltas), no accelerometer
           1-100     2 samples x 4 ch, 18-bit *deltas* + 1 accelerometer byte
           101-200   2 samples x 4 ch, 19-bit deltas
    fw 3   0-99      2 samples x 4 ch, 18-bit *absolute* MSBs (value << 6) + 1 accelerometer byte
           100-199   2 samples x 4 ch, 19-bit absolute MSBs (value << 5)
    both   201-205   impedance (ASCII), 206/207 ASCII text: ignored

Fields are packed MSB-first from byte 1. The documentation stores the sign in each field's LSB (bit 0)
and sign-extends with ones (OpenBCI's JavaScript utilities: ``v | 0xFFF80000`` when ``v & 1``); on the
firmware's data the field's MSB carries the same sign. BrainFlow subtracts one more count for negative
values (≤ 0.002 µV, or 0.06 µV after the fw3 shift); we follow the documentation. Firmware 2 deltas are
*subtracted*: ``sample = previous - delta`` (both references agree).

The firmware is told from the Software Revision characteristic (0x2A28, "2.x"/"3.x"); without it, a raw
packet (id 0) means firmware 2. **The board resets whenever a connection opens**, so every reconnect is a
fresh start: the start commands (``b`` stream, ``n`` accelerometer on) are re-sent each time, and a
firmware 2 stream is only decodable after its next raw packet.

Packet ids count 1..100 (or 101..200, 0..99, 100..199) and wrap, so a jump of k means k - 1 lost
packets = 2(k - 1) samples. The accelerometer sends one axis per 18-bit packet, chosen by ``id % 10``
(BrainFlow: 2 = x, 1 = y, 0 = z inverted; the documentation's firmware excerpt uses 1/2/3), about 10 Hz
per axis; we emit an ACC sample (x, y, z) each time z arrives. Scale: 1.2e6 / (8388607 x 1.5 x 51)
= 0.001870 µV/count; accelerometer 0.016 g/LSB as in BrainFlow (the documentation says 0.032: check a
board lying flat reads 1 g before trusting absolute g).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import numpy as np

from crampwatch.frames import Channel, StreamKind
from crampwatch.units import ACC_UNIT, EMG_UNIT

from ..profile import (
    SOFTWARE_REVISION_UUID,
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

SERVICE_UUID: Final = "0000fe84-0000-1000-8000-00805f9b34fb"
NOTIFY_UUID: Final = "2d30c082-f39f-4ce6-923f-3484ea480596"
WRITE_UUID: Final = "2d30c083-f39f-4ce6-923f-3484ea480596"
DISCONNECT_UUID: Final = "2d30c084-f39f-4ce6-923f-3484ea480596"

UV_PER_COUNT: Final = 1.2e6 / (8388607 * 1.5 * 51)
G_PER_LSB: Final = 0.016
EMG_RATE_HZ: Final = 200.0
ACC_RATE_HZ: Final = 10.0  # one full (x, y, z) reading per 10 packets of 2 samples


def _field(data: bytes, index: int, bits: int) -> int:
    """The ``index``-th ``bits``-wide unsigned field packed MSB-first after the id byte."""
    value = int.from_bytes(data[1:], "big")
    total = (len(data) - 1) * 8
    shift = total - (index + 1) * bits
    return (value >> shift) & ((1 << bits) - 1)


def signed_field(raw: int, bits: int) -> int:
    """Documented Ganglion sign rule: bit 0 is the sign; negative values are sign-extended with ones."""
    return raw - (1 << bits) if raw & 1 else raw


def decode_compressed(data: bytes, bits: int) -> np.ndarray:
    """The 8 signed fields (2 samples x 4 channels) of an 18- or 19-bit packet, ``(2, 4)`` int64."""
    return np.array([signed_field(_field(data, i, bits), bits) for i in range(8)], dtype=np.int64).reshape(2, 4)


def decode_raw(data: bytes) -> np.ndarray:
    """Packet 0: 4 x int24 big-endian at bytes 1-12, ``(4,)`` int64."""
    return np.array([int.from_bytes(data[1 + 3 * i : 4 + 3 * i], "big", signed=True) for i in range(4)], dtype=np.int64)


def firmware_from_revision(revision: bytes | None) -> int | None:
    """2 or 3 from the Software Revision string ("2.0.1", "3.1.0"), None if absent or unreadable."""
    text = (revision or b"").decode("ascii", "replace").strip()
    return int(text[0]) if text[:1] in ("2", "3") else None


class GanglionDecoder:
    """Firmware 2/3 decompression, packet-id gap detection and accelerometer axis assembly."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self.firmware: int | None = None
        self._last = np.zeros(4, dtype=np.int64)  # last decoded sample (fw2 delta base)
        self._seeded = False
        self._ids = SeqCounter(100)
        self._acc = [0, 0, 0]
        self._acc_seen = [False, False, False]
        self._lost_emg = 0  # samples lost since the last EMG block (reported on the next one)
        self._lost_acc_packets = 0

    def start(self, info: Mapping[str, bytes]) -> tuple[StreamSpec, ...]:
        self.firmware = firmware_from_revision(info.get(SOFTWARE_REVISION_UUID))
        self._seeded = False
        self._ids.reset()
        self._acc_seen = [False, False, False]
        self._lost_emg = 0
        self._lost_acc_packets = 0
        return PROFILE.streams

    def feed(self, char_uuid: str, data: bytes) -> list[SampleBlock]:
        self.stats.packets += 1
        if len(data) != 20:
            self.stats.malformed += 1
            return []
        pid = data[0]
        if pid > 200:
            return []  # impedance or ASCII text
        if self.firmware is None:
            self.firmware = 2 if pid == 0 else 3
            log.info("Ganglion firmware not reported; assuming firmware %d from the packet ids", self.firmware)
        if self.firmware == 2:
            return self._feed_fw2(pid, data)
        return self._feed_fw3(pid, data)

    def _gap(self, seq: int) -> int:
        lost = self._ids.lost(seq)
        if lost:
            self.stats.lost(StreamKind.EMG, 2 * lost)
            self._lost_acc_packets += lost
        self._lost_emg += 2 * lost
        return 2 * lost

    def _emg(self, values: np.ndarray) -> SampleBlock:
        block = SampleBlock(StreamKind.EMG, as_counts(values, "int32", 4), lost_before=self._lost_emg)
        self._lost_emg = 0
        return block

    def _feed_fw2(self, pid: int, data: bytes) -> list[SampleBlock]:
        if pid == 0:
            self._last = decode_raw(data)
            self._seeded = True
            self._ids.reset()
            return [self._emg(self._last[None, :])]
        lost = self._gap((pid - 1) % 100)
        if lost and self._seeded:
            self._seeded = False  # deltas are useless after a lost packet: wait for the next raw packet
            log.debug("Ganglion fw2: %d samples lost; waiting for a raw packet to re-seed", lost)
        if not self._seeded:
            self._lost_emg += 2  # received, but cannot be decoded without a base value
            return []
        bits = 18 if pid <= 100 else 19
        deltas = decode_compressed(data, bits)
        first = self._last - deltas[0]
        second = first - deltas[1]
        self._last = second
        blocks = [self._emg(np.stack([first, second]))]
        if bits == 18:
            blocks += self._accel(pid, data[19])
        return blocks

    def _feed_fw3(self, pid: int, data: bytes) -> list[SampleBlock]:
        self._gap(pid % 100)
        bits = 18 if pid < 100 else 19
        blocks = [self._emg(decode_compressed(data, bits) << (24 - bits))]
        if bits == 18:
            blocks += self._accel(pid, data[19])
        return blocks

    def _accel(self, pid: int, raw: int) -> list[SampleBlock]:
        value = raw - 256 if raw > 127 else raw
        axis = {2: 0, 1: 1, 0: 2}.get(pid % 10)
        if axis is None:
            return []
        self._acc[axis] = -value if axis == 2 else value
        self._acc_seen[axis] = True
        if axis != 2 or not all(self._acc_seen):
            return []
        lost, self._lost_acc_packets = self._lost_acc_packets // 10, 0
        if lost:
            self.stats.lost(StreamKind.ACC, lost)
        return [SampleBlock(StreamKind.ACC, as_counts(self._acc, "int16", 3), lost_before=lost)]


PROFILE = register(
    DeviceProfile(
        name="ganglion",
        title="OpenBCI Ganglion",
        service_uuid=SERVICE_UUID,
        local_names=("Ganglion", "Simblee"),
        notify=(NOTIFY_UUID,),
        # The board resets on every connection: always re-send stream + accelerometer on.
        start=(Write(WRITE_UUID, b"n"), Write(WRITE_UUID, b"b")),
        stop=(Write(WRITE_UUID, b"s"),),
        streams=(
            StreamSpec(
                StreamKind.EMG,
                EMG_RATE_HZ,
                tuple(Channel(f"ch{i}", EMG_UNIT, UV_PER_COUNT) for i in range(1, 5)),
                dtype="int32",
            ),
            StreamSpec(StreamKind.ACC, ACC_RATE_HZ, tuple(Channel(a, ACC_UNIT, G_PER_LSB) for a in "xyz")),
        ),
        decoder=GanglionDecoder,
        read_on_connect=(SOFTWARE_REVISION_UUID,),
        silence_s=3.0,
        notes="4 ch EMG 200 Hz in µV (0.00187 µV/count), ACC ~10 Hz at 0.016 g/LSB (BrainFlow; docs say "
        "0.032). Resets on every connection; start commands are re-sent each time.",
    )
)
