"""Thalmic Labs Myo armband: 8 channels of int8 EMG at 200 Hz and an IMU at 50 Hz.

Sources: ``thalmiclabs/myo-bluetooth`` ``myohw.h`` (GATT table, commands, scales) and ``iomz/dl-myo``
(a bleak client). Discontinued in October 2018 and worn on the forearm: CrampWatch keeps it as a well
documented test fixture, not as a recommended leg sensor (devices.md §2).

UUIDs are ``d506XXXX-a904-deb9-4748-2c7f4a124842``: 0x0401 command (write), 0x0402 IMU (notify, 20 B),
0x0105/0x0205/0x0305/0x0405 EMG data 0-3 (notify, 16 B each). Start = subscribe to all four EMG
characteristics and the IMU, then write ``set_mode`` ``01 03 <emg> <imu> <classifier>`` =
``01 03 02 01 00`` (filtered EMG, IMU on, classifier off) and ``09 01 01`` (never sleep; the Myo
otherwise sleeps when it thinks it is not worn, myo-bluetooth issue #5).

EMG notification: 2 samples x 8 channels, int8. The four characteristics take turns, so the turn order
is a 2-bit packet counter: a notification from the wrong characteristic means packets were lost (losses of
a multiple of 4 packets cannot be seen). IMU notification, little-endian int16 (as dl-myo decodes; the
header's comments say big-endian, but dl-myo's LE decoding gives a 1 g gravity vector): quaternion
w, x, y, z / 16384, accelerometer x, y, z / 2048 g, gyroscope x, y, z / 16 °/s. Only the accelerometer
is published.

**Assumption (no µV scale):** Thalmic never published a conversion from the int8 EMG counts to volts.
The counts are published with unit "uV" and scale 1.0 so the pipeline accepts them, but they are
arbitrary units: absolute-amplitude thresholds (PLM's 8 µV onset) are meaningless for Myo data; only
relative features (onset against the night's own baseline, spectra) carry over.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

import numpy as np

from crampwatch.frames import Channel, StreamKind
from crampwatch.units import ACC_UNIT, EMG_UNIT

from ..profile import DecoderStats, DeviceProfile, SampleBlock, SeqCounter, StreamSpec, Write, as_counts, register


def myo_uuid(short: int) -> str:
    return f"d506{short:04x}-a904-deb9-4748-2c7f4a124842"


CONTROL_SERVICE_UUID: Final = myo_uuid(0x0001)
IMU_SERVICE_UUID: Final = myo_uuid(0x0002)
EMG_SERVICE_UUID: Final = myo_uuid(0x0005)
COMMAND_UUID: Final = myo_uuid(0x0401)
IMU_UUID: Final = myo_uuid(0x0402)
EMG_UUIDS: Final = tuple(myo_uuid(c) for c in (0x0105, 0x0205, 0x0305, 0x0405))

SET_MODE_FILTERED_EMG_IMU: Final = bytes([0x01, 0x03, 0x02, 0x01, 0x00])
SET_MODE_OFF: Final = bytes([0x01, 0x03, 0x00, 0x00, 0x00])
NEVER_SLEEP: Final = bytes([0x09, 0x01, 0x01])

EMG_RATE_HZ: Final = 200.0
IMU_RATE_HZ: Final = 50.0
ACC_G_PER_LSB: Final = 1 / 2048
ASSUMED_UV_PER_COUNT: Final = 1.0  # arbitrary units, see the module docstring

IMU = struct.Struct("<4h3h3h")


def decode_emg(data: bytes) -> np.ndarray:
    """One EMG notification: ``(2, 8)`` int8 (pure). ValueError if not 16 bytes."""
    if len(data) != 16:
        raise ValueError(f"EMG notification has {len(data)} bytes, expected 16")
    return np.frombuffer(data, dtype=np.int8).reshape(2, 8)


def decode_imu(data: bytes) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """One IMU notification: (quaternion w x y z, accelerometer x y z, gyroscope x y z) in counts."""
    if len(data) != IMU.size:
        raise ValueError(f"IMU notification has {len(data)} bytes, expected {IMU.size}")
    values = IMU.unpack(data)
    return values[0:4], values[4:7], values[7:10]


class MyoDecoder:
    """Tracks the EMG characteristics' turn order to detect lost notifications."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._turn = SeqCounter(4, wide=False)

    def start(self, info: Mapping[str, bytes]) -> tuple[StreamSpec, ...]:
        self._turn.reset()
        return PROFILE.streams

    def feed(self, char_uuid: str, data: bytes) -> list[SampleBlock]:
        self.stats.packets += 1
        uuid = char_uuid.lower()
        try:
            if uuid in EMG_UUIDS:
                samples = decode_emg(data)
                lost = self._turn.lost(EMG_UUIDS.index(uuid)) * 2
                if lost:
                    self.stats.lost(StreamKind.EMG, lost)
                return [SampleBlock(StreamKind.EMG, as_counts(samples, "int16", 8), lost_before=lost)]
            if uuid == IMU_UUID:
                _, acc, _ = decode_imu(data)
                return [SampleBlock(StreamKind.ACC, as_counts(acc, "int16", 3))]
        except ValueError:
            self.stats.malformed += 1
        return []


PROFILE = register(
    DeviceProfile(
        name="myo",
        title="Thalmic Myo armband",
        service_uuid=CONTROL_SERVICE_UUID,
        local_names=("Myo",),
        notify=(*EMG_UUIDS, IMU_UUID),
        start=(
            Write(COMMAND_UUID, NEVER_SLEEP, response=True),
            Write(COMMAND_UUID, SET_MODE_FILTERED_EMG_IMU, response=True),
        ),
        stop=(Write(COMMAND_UUID, SET_MODE_OFF, response=True),),
        streams=(
            StreamSpec(
                StreamKind.EMG,
                EMG_RATE_HZ,
                tuple(Channel(f"emg{i}", EMG_UNIT, ASSUMED_UV_PER_COUNT) for i in range(8)),
            ),
            StreamSpec(StreamKind.ACC, IMU_RATE_HZ, tuple(Channel(a, ACC_UNIT, ACC_G_PER_LSB) for a in "xyz")),
        ),
        decoder=MyoDecoder,
        silence_s=3.0,
        notes="Discontinued, forearm; test fixture. EMG is int8 in ARBITRARY units labelled uV (no published "
        "scale): absolute µV thresholds do not apply.",
    )
)
