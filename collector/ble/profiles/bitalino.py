"""BITalino (r)evolution BLE: EMG on analog inputs A1-A4 (10-bit), as a byte stream of CRC-checked frames.

Sources: ``BITalinoWorld/firmware-BT121`` ``GATT.xml`` (service and characteristics) and
``BITalinoWorld/cpp-api`` ``bitalino.cpp`` (commands, frame layout, CRC4).

Service ``c566488a-0882-4e1b-a6d0-0b717e652234``; commands ``4051eb11-bf0a-4c74-8730-a48f4193fcea``
(write), frames ``40fdba6b-672e-47c4-808a-e529adff3633`` (notify), both ≤ 20 bytes; name "BITalino BLE".
Commands: sampling rate ``0x03 | code << 6`` (code 0/1/2/3 = 1/10/100/1000 Hz), start
``0x01 | channel_mask << 2`` (bit i = A(i+1)), stop ``0x00``.

Frames (``bitalino.cpp`` ``read``): ``n_ch + 2`` bytes (+1 for 3-5 channels), read from the end: last
byte = 4-bit sequence << 4 | CRC4; the byte before holds the digital inputs (high nibble) and the top
bits of A1; A1-A4 are 10-bit, A5-A6 6-bit. A notification is *not* aligned to frames: they are a byte
stream, so the decoder buffers, checks each frame's CRC, and on a mismatch drops one byte and tries
again (resync), as a serial reader must.

EMG sensor transfer function (BITalino EMG datasheet): EMG(mV) = (ADC / 2^10 - 0.5) x 3.3 / 1009, so in
µV per count 3.3e6 / 1009 / 1024 ≈ 3.19 with an offset of -1635 µV (±1.65 mV range). The 4-bit
sequence number wraps every 16 frames: a jump of k = k - 1 lost frames (16 lost frames in a row
are invisible). We stream A1-A4 (four EMG sensors) at 1000 Hz: 7-byte frames, 7 kB/s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import numpy as np

from crampwatch.frames import Channel, StreamKind
from crampwatch.units import EMG_UNIT

from ..profile import DecoderStats, DeviceProfile, SampleBlock, SeqCounter, StreamSpec, Write, as_counts, register

log = logging.getLogger(__name__)

SERVICE_UUID: Final = "c566488a-0882-4e1b-a6d0-0b717e652234"
COMMANDS_UUID: Final = "4051eb11-bf0a-4c74-8730-a48f4193fcea"
FRAMES_UUID: Final = "40fdba6b-672e-47c4-808a-e529adff3633"

RATE_CODES: Final = {1: 0, 10: 1, 100: 2, 1000: 3}
EMG_RATE_HZ: Final = 1000
CHANNELS: Final = (0, 1, 2, 3)  # A1-A4
VCC: Final = 3.3
EMG_GAIN: Final = 1009
UV_PER_COUNT: Final = VCC / EMG_GAIN / 1024 * 1e6
UV_OFFSET: Final = -0.5 * VCC / EMG_GAIN * 1e6


def rate_command(rate_hz: int) -> bytes:
    return bytes([0x03 | RATE_CODES[rate_hz] << 6])


def start_command(channels: tuple[int, ...], *, simulated: bool = False) -> bytes:
    mask = sum(1 << c for c in channels)
    return bytes([(0x02 if simulated else 0x01) | mask << 2])


def frame_size(n_channels: int) -> int:
    return n_channels + 2 + (1 if 3 <= n_channels <= 5 else 0)


def crc4(frame: bytes) -> int:
    """The CRC4 of a frame whose last byte's low nibble (the CRC itself) is taken as zero."""
    buf = bytearray(frame)
    buf[-1] &= 0xF0
    x = 0
    for byte in buf:
        for bit in range(7, -1, -1):
            x <<= 1
            if x & 0x10:
                x ^= 0x03
            x ^= (byte >> bit) & 0x01
    return x & 0x0F


def decode_frame(frame: bytes, n_channels: int) -> tuple[int, list[int]]:
    """(sequence 0-15, analog values A1..An) of one CRC-valid frame (pure; the CRC is checked)."""
    b = frame
    n = len(b)
    if n != frame_size(n_channels):
        raise ValueError(f"{n}-byte frame, {n_channels} channels need {frame_size(n_channels)}")
    if crc4(b) != b[-1] & 0x0F:
        raise ValueError("CRC mismatch")
    analog = [((b[n - 2] & 0x0F) << 6) | (b[n - 3] >> 2)]
    if n_channels > 1:
        analog.append(((b[n - 3] & 0x03) << 8) | b[n - 4])
    if n_channels > 2:
        analog.append((b[n - 5] << 2) | (b[n - 6] >> 6))
    if n_channels > 3:
        analog.append(((b[n - 6] & 0x3F) << 4) | (b[n - 7] >> 4))
    if n_channels > 4:
        analog.append(((b[n - 7] & 0x0F) << 2) | (b[n - 8] >> 6))
    if n_channels > 5:
        analog.append(b[n - 8] & 0x3F)
    return b[-1] >> 4, analog


class BitalinoDecoder:
    """Reassembles frames from the notification byte stream, with CRC resync and sequence gaps."""

    def __init__(self, n_channels: int = len(CHANNELS)) -> None:
        self.stats = DecoderStats()
        self.n_channels = n_channels
        self.size = frame_size(n_channels)
        self.resyncs = 0
        self._buffer = bytearray()
        self._seq = SeqCounter(16, wide=False)

    def start(self, info: Mapping[str, bytes]) -> tuple[StreamSpec, ...]:
        self._buffer.clear()
        self._seq.reset()
        return PROFILE.streams

    def feed(self, char_uuid: str, data: bytes) -> list[SampleBlock]:
        self.stats.packets += 1
        self._buffer += data
        rows: list[list[int]] = []
        lost_total = 0
        blocks: list[SampleBlock] = []
        while len(self._buffer) >= self.size:
            frame = bytes(self._buffer[: self.size])
            try:
                seq, analog = decode_frame(frame, self.n_channels)
            except ValueError:
                del self._buffer[0]  # not aligned on a frame (or corrupted): slide by one byte
                self.resyncs += 1
                self.stats.malformed += 1
                continue
            del self._buffer[: self.size]
            lost = self._seq.lost(seq)
            if lost:
                self.stats.lost(StreamKind.EMG, lost)
                if rows:
                    blocks.append(self._block(rows, lost_total))
                    rows = []
                lost_total = lost
            rows.append(analog)
        if rows:
            blocks.append(self._block(rows, lost_total))
        return blocks

    def _block(self, rows: list[list[int]], lost: int) -> SampleBlock:
        return SampleBlock(StreamKind.EMG, as_counts(np.array(rows), "int16", self.n_channels), lost_before=lost)


PROFILE = register(
    DeviceProfile(
        name="bitalino",
        title="BITalino (r)evolution BLE",
        service_uuid=SERVICE_UUID,
        local_names=("BITalino",),
        notify=(FRAMES_UUID,),
        start=(
            Write(COMMANDS_UUID, rate_command(EMG_RATE_HZ), pause_s=0.05),
            Write(COMMANDS_UUID, start_command(CHANNELS)),
        ),
        stop=(Write(COMMANDS_UUID, b"\x00"),),
        streams=(
            StreamSpec(
                StreamKind.EMG,
                float(EMG_RATE_HZ),
                tuple(Channel(f"A{c + 1}", EMG_UNIT, UV_PER_COUNT, UV_OFFSET) for c in CHANNELS),
            ),
        ),
        decoder=BitalinoDecoder,
        silence_s=3.0,
        notes="EMG sensors on A1-A4 at 1000 Hz, ~3.19 µV/count (±1.65 mV). No accelerometer stream "
        "(BITalino's ACC needs per-device Cmin/Cmax calibration).",
    )
)
