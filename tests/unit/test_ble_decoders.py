"""Device decoders against golden byte vectors built from the public protocol documents.

Each vector is written out as hex and its expected values worked out by hand from the document named in
the profile module (myohw.h layouts, the OpenBCI Ganglion data format, polar-ble-sdk #360, bitalino.cpp),
so a change in a decoder that breaks the documented format fails here, not at the bedside.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from collector.ble.profile import SOFTWARE_REVISION_UUID, SampleBlock, SeqCounter, all_profiles, get_profile
from collector.ble.profiles import bitalino, crampwatch, ganglion, myo, polar
from crampwatch.errors import CrampWatchError
from crampwatch.frames import StreamKind


def values(block: SampleBlock) -> np.ndarray:
    return np.asarray(block.data, dtype=np.int64)


# -- registry --------------------------------------------------------------------------------------


def test_every_profile_is_registered_with_consistent_streams() -> None:
    names = [p.name for p in all_profiles()]
    assert names == ["bitalino", "crampwatch", "ganglion", "myo", "polar"]
    for profile in all_profiles():
        assert profile.notify, profile.name
        assert profile.start, profile.name
        decoder = profile.decoder()
        assert decoder.start({}) == profile.streams
        for spec in profile.streams:
            assert spec.dtype in ("int16", "int32")
            assert all(c.unit in ("uV", "g") for c in spec.channels)


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(CrampWatchError, match="crampwatch, ganglion"):
        get_profile("fitbit")


def test_profiles_recognise_their_advertisements() -> None:
    ganglion_profile = get_profile("ganglion")
    assert ganglion_profile.matches("Ganglion-1a2b", [])
    assert ganglion_profile.matches(None, ["0000FE84-0000-1000-8000-00805F9B34FB"])
    assert not ganglion_profile.matches("Polar H10 1234", [])


def test_seq_counter_wraps_and_ignores_restarts() -> None:
    wide = SeqCounter(1 << 16)
    assert [wide.lost(s) for s in (65534, 65535, 0, 3, 3, 40000)] == [0, 0, 0, 2, 0, 0]
    narrow = SeqCounter(4, wide=False)
    assert [narrow.lost(s) for s in (0, 1, 3, 3, 0)] == [0, 0, 1, 3, 0]


# -- CrampWatch sensor -------------------------------------------------------------------------------

CW_EMG = bytes.fromhex("01 02 0500 e8030000 0a00 f6ff 1400 ecff")  # EMG, n=2, seq 5, t0 1000 µs


def test_crampwatch_packet_golden_vector() -> None:
    packet = crampwatch.decode_packet(CW_EMG, emg_channels=2)
    assert (packet.type, packet.seq, packet.t0_us) == (crampwatch.TYPE_EMG, 5, 1000)
    assert packet.samples.tolist() == [[10, -10], [20, -20]]


def test_crampwatch_decoder_reads_info_converts_units_and_counts_gaps() -> None:
    info = crampwatch.SensorInfo(1, 2, 500, 50, 4.0, 1 / 1024)
    assert crampwatch.SensorInfo.parse(info.pack()) == info
    decoder = crampwatch.CrampWatchDecoder()
    specs = decoder.start({crampwatch.INFO_UUID: info.pack()})
    assert [(s.kind, s.rate_hz, len(s.channels)) for s in specs] == [(StreamKind.EMG, 500, 2), (StreamKind.ACC, 50, 3)]
    (block,) = decoder.feed(crampwatch.DATA_UUID, CW_EMG)
    assert block.t_device_ns == 1_000_000
    assert (values(block) * specs[0].channels[0].scale).tolist() == [[40.0, -40.0], [80.0, -80.0]]
    # seq 6 missing: next packet is seq 7, 2 samples (4 ms at 500 Hz) after the lost one
    later = struct.pack("<BBHI", 1, 2, 7, 1000 + 8000) + b"\x00" * 8
    (block,) = decoder.feed(crampwatch.DATA_UUID, later)
    assert block.lost_before == 2
    assert decoder.stats.gaps == 1
    assert decoder.stats.lost_samples == {StreamKind.EMG: 2}


def test_crampwatch_clock_unwraps_after_71_minutes() -> None:
    decoder = crampwatch.CrampWatchDecoder()
    decoder.start({crampwatch.INFO_UUID: crampwatch.SensorInfo(1, 1, 1000, 0, 4.0, 0.0).pack()})
    first = struct.pack("<BBHI", 1, 1, 0, 2**32 - 1000) + b"\x00\x00"
    second = struct.pack("<BBHI", 1, 1, 1, 0) + b"\x00\x00"
    t1 = decoder.feed(crampwatch.DATA_UUID, first)[0].t_device_ns
    t2 = decoder.feed(crampwatch.DATA_UUID, second)[0].t_device_ns
    assert t1 is not None and t2 is not None
    assert t2 - t1 == 1_000_000


@pytest.mark.parametrize(
    "data",
    [b"\x01\x02", bytes.fromhex("07 01 0000 00000000 0000"), CW_EMG[:-1], bytes.fromhex("01 00 0000 00000000")],
    ids=["short", "unknown-type", "truncated", "zero-samples"],
)
def test_crampwatch_malformed_packets_are_counted_not_raised(data: bytes) -> None:
    decoder = crampwatch.CrampWatchDecoder()
    decoder.start({})
    assert decoder.feed(crampwatch.DATA_UUID, data) == []
    assert decoder.stats.malformed == 1


# -- OpenBCI Ganglion --------------------------------------------------------------------------------

# fw3, id 150 (19-bit): fields 1000, -1001, 2, -3, 0, 6, -7, 123454 (sign in bit 0), MSB-first.
GANGLION_FW3_19 = bytes.fromhex("96007d1ff05c00017fffd000000001bfffc9e23e")
# fw3, id 5 (18-bit): fields 10, -11, 100, -101, 4, -5, 0, -1 and accelerometer byte 0xf0.
GANGLION_FW3_18 = bytes.fromhex("050002bfff500193ff9b00013fffb00003fffff0")


def test_ganglion_sign_rule_follows_the_documentation() -> None:
    assert ganglion.signed_field(0b10, 19) == 2
    assert ganglion.signed_field((1 << 19) - 1, 19) == -1  # all ones, bit 0 set
    assert ganglion.signed_field((1 << 19) - 1001, 19) == -1001


def test_ganglion_fw3_19bit_golden_vector() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.start({SOFTWARE_REVISION_UUID: b"3.1.0"})
    (block,) = decoder.feed(ganglion.NOTIFY_UUID, GANGLION_FW3_19)
    expected = np.array([[1000, -1001, 2, -3], [0, 6, -7, 123454]]) << 5
    assert values(block).tolist() == expected.tolist()
    assert block.data.dtype == np.int32
    uv = values(block)[0, 0] * ganglion.UV_PER_COUNT
    assert uv == pytest.approx(1000 * 32 * 0.001870, rel=1e-3)


def test_ganglion_fw3_18bit_golden_vector_and_packet_id_gaps() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.start({SOFTWARE_REVISION_UUID: b"3.1.0"})
    (block,) = decoder.feed(ganglion.NOTIFY_UUID, GANGLION_FW3_18)
    assert values(block).tolist() == (np.array([[10, -11, 100, -101], [4, -5, 0, -1]]) << 6).tolist()
    later = bytes([8]) + GANGLION_FW3_18[1:]  # ids 6 and 7 lost = 4 samples
    (block,) = decoder.feed(ganglion.NOTIFY_UUID, later)
    assert block.lost_before == 4
    assert decoder.stats.lost_samples[StreamKind.EMG] == 4


def test_ganglion_accelerometer_axes_rotate_with_the_packet_id() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.start({SOFTWARE_REVISION_UUID: b"3.0"})
    acc = []
    for pid, byte in [(11, 0x05), (12, 0xFE), *((p, 0) for p in range(13, 20)), (20, 0x40)]:
        blocks = decoder.feed(ganglion.NOTIFY_UUID, bytes([pid]) + GANGLION_FW3_18[1:19] + bytes([byte]))
        acc += [b for b in blocks if b.kind is StreamKind.ACC]
    (block,) = acc
    assert values(block).tolist() == [[-2, 5, -64]]  # x = id%10 2, y = id%10 1, z = -(id%10 0)
    assert values(block)[0, 2] * ganglion.G_PER_LSB == pytest.approx(-1.024)


def test_ganglion_fw2_raw_packet_seeds_subtracted_deltas() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.start({SOFTWARE_REVISION_UUID: b"2.0.1"})
    raw = bytes.fromhex("00 000064 ffff9c 010000 feffff") + bytes(7)
    (block,) = decoder.feed(ganglion.NOTIFY_UUID, raw)
    assert values(block).tolist() == [[100, -100, 65536, -65537]]
    # id 1 (18-bit): deltas 10, -11, 100, -101 then 4, -5, 0, -1: sample = previous - delta
    (block, *_) = decoder.feed(ganglion.NOTIFY_UUID, bytes([1]) + GANGLION_FW3_18[1:])
    assert values(block).tolist() == [[90, -89, 65436, -65436], [86, -84, 65436, -65435]]


def test_ganglion_fw2_waits_for_a_raw_packet_after_a_loss() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.start({SOFTWARE_REVISION_UUID: b"2.0.1"})
    decoder.feed(ganglion.NOTIFY_UUID, bytes(20))
    assert decoder.feed(ganglion.NOTIFY_UUID, bytes([1]) + GANGLION_FW3_18[1:])
    assert decoder.feed(ganglion.NOTIFY_UUID, bytes([3]) + GANGLION_FW3_18[1:]) == []  # id 2 lost: unusable
    (block,) = decoder.feed(ganglion.NOTIFY_UUID, bytes(20))  # re-seeded
    assert block.lost_before == 4  # id 2 lost (2 samples) + id 3 undecodable (2 samples)


def test_ganglion_firmware_is_guessed_without_a_revision_and_text_is_ignored() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.start({})
    assert decoder.feed(ganglion.NOTIFY_UUID, bytes([206]) + b"hello" + bytes(14)) == []
    decoder.feed(ganglion.NOTIFY_UUID, GANGLION_FW3_19)
    assert decoder.firmware == 3
    assert decoder.feed(ganglion.NOTIFY_UUID, bytes(19)) == []
    assert decoder.stats.malformed == 1


# -- Myo -------------------------------------------------------------------------------------------


def test_myo_emg_and_imu_golden_vectors() -> None:
    decoder = myo.MyoDecoder()
    decoder.start({})
    emg = bytes(range(8)) + bytes([0xFF, 0x80, 0x7F, 0, 1, 2, 3, 4])
    (block,) = decoder.feed(myo.EMG_UUIDS[0], emg)
    assert values(block).tolist() == [[0, 1, 2, 3, 4, 5, 6, 7], [-1, -128, 127, 0, 1, 2, 3, 4]]
    imu = bytes.fromhex("0040 0000 0000 00000000 0000 00081000 0000 f0ff")
    quat, acc, gyro = myo.decode_imu(imu)
    assert (quat, acc, gyro) == ((16384, 0, 0, 0), (0, 0, 2048), (16, 0, -16))
    (block,) = decoder.feed(myo.IMU_UUID, imu)
    assert block.kind is StreamKind.ACC
    assert (values(block) * myo.ACC_G_PER_LSB).tolist() == [[0.0, 0.0, 1.0]]


def test_myo_lost_notifications_show_in_the_characteristic_turn_order() -> None:
    decoder = myo.MyoDecoder()
    decoder.start({})
    lost = [decoder.feed(myo.EMG_UUIDS[i], bytes(16))[0].lost_before for i in (0, 1, 3, 0, 0)]
    assert lost == [0, 0, 2, 0, 6]
    assert bytes.fromhex("0103020100") == myo.SET_MODE_FILTERED_EMG_IMU


# -- Polar PMD -------------------------------------------------------------------------------------


def test_polar_start_command_matches_the_sdk_issue_bytes() -> None:
    assert polar.start_command(rate_hz=200, range_g=8, resolution=16) == polar.START_ACC
    assert polar.START_ACC.hex(" ") == "02 02 02 01 08 00 00 01 c8 00 01 01 10 00"


def test_polar_acc_frame_golden_vector() -> None:
    frame = bytes.fromhex("02 00e40b5402000000 01 e803 18fc 0000 0000 0000 e803")
    meas, ts, samples = polar.decode_data(frame)
    assert (meas, ts) == (2, 10_000_000_000)
    assert samples.tolist() == [[1000, -1000, 0], [0, 0, 1000]]
    decoder = polar.PolarDecoder()
    decoder.start({})
    (block,) = decoder.feed(polar.DATA_UUID, frame)
    assert block.t_device_ns == 10_000_000_000 - 5_000_000  # the timestamp is the LAST sample's
    assert (values(block) * polar.G_PER_MG).tolist() == [[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]


def test_polar_delta_compressed_frame() -> None:
    # reference (100, 200, -300) int16 LE, then one block: width 4, 1 sample, deltas (1, -1, 2) LSB-first
    payload = bytes.fromhex("6400 c800 d4fe 04 01 f102")
    frame = bytes([2]) + (10**9).to_bytes(8, "little") + bytes([0x81]) + payload
    _, _, samples = polar.decode_data(frame)
    assert samples.tolist() == [[100, 200, -300], [101, 199, -298]]


def test_polar_lost_frames_show_as_a_timestamp_jump_and_errors_are_named(caplog: pytest.LogCaptureFixture) -> None:
    decoder = polar.PolarDecoder()
    decoder.start({})

    def frame(last_ns: int) -> bytes:
        return bytes([2]) + last_ns.to_bytes(8, "little") + bytes([1]) + bytes(12)  # 2 samples

    decoder.feed(polar.DATA_UUID, frame(10_000_000))
    (block,) = decoder.feed(polar.DATA_UUID, frame(10_000_000 + 4 * 5_000_000))  # 2 samples missing
    assert block.lost_before == 2
    decoder.feed(polar.CONTROL_UUID, bytes([0xF0, 0x02, 0x02, 13]))
    assert "device in charger" in caplog.text
    assert decoder.last_error == 13


# -- BITalino --------------------------------------------------------------------------------------

# 4 channels: A1=512, A2=1023, A3=0, A4=341, digital 0, seq 5; CRC4 (bitalino.cpp) = 0xc
BITALINO_FRAME = bytes.fromhex("501500ff03085c")


def test_bitalino_frame_golden_vector() -> None:
    assert bitalino.crc4(BITALINO_FRAME) == 0xC
    seq, analog = bitalino.decode_frame(BITALINO_FRAME, 4)
    assert (seq, analog) == (5, [512, 1023, 0, 341])
    assert bitalino.rate_command(1000) == b"\xc3"
    assert bitalino.start_command((0, 1, 2, 3)) == b"\x3d"


def test_bitalino_emg_transfer_function() -> None:
    uv = 512 * bitalino.UV_PER_COUNT + bitalino.UV_OFFSET
    assert uv == pytest.approx(0.0, abs=1e-9)  # mid-scale is 0 mV
    full = 1023 * bitalino.UV_PER_COUNT + bitalino.UV_OFFSET
    assert full == pytest.approx(((1023 / 1024 - 0.5) * 3.3 / 1009) * 1e6)  # datasheet formula in µV


def _bitalino_frame(seq: int, a1: int) -> bytes:
    body = bytearray([0, 0, 0, 0, 0, (a1 >> 6) & 0x0F, seq << 4])
    body[4] = (a1 & 0x3F) << 2
    body[6] |= bitalino.crc4(bytes(body))
    return bytes(body)


def test_bitalino_byte_stream_is_reassembled_across_notifications_and_resynced() -> None:
    decoder = bitalino.BitalinoDecoder()
    decoder.start({})
    stream = b"".join(_bitalino_frame(s % 16, 100 + s) for s in range(6))
    stream = b"\x77\x13" + stream  # garbage before the first frame: resync by sliding
    got: list[int] = []
    for start in range(0, len(stream), 5):  # notifications not aligned to 7-byte frames
        for block in decoder.feed(bitalino.FRAMES_UUID, stream[start : start + 5]):
            got += values(block)[:, 0].tolist()
    assert got == [100, 101, 102, 103, 104, 105]
    assert decoder.resyncs >= 2


def test_bitalino_sequence_gaps() -> None:
    decoder = bitalino.BitalinoDecoder()
    decoder.start({})
    data = _bitalino_frame(14, 1) + _bitalino_frame(15, 2) + _bitalino_frame(2, 3)  # 0 and 1 lost
    first, second = decoder.feed(bitalino.FRAMES_UUID, data)
    assert values(first)[:, 0].tolist() == [1, 2]
    assert second.lost_before == 2
    assert decoder.stats.lost_samples == {StreamKind.EMG: 2}
