"""Wire format v1: round trips, and a clear reason for every kind of malformed frame."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from crampwatch import wire
from crampwatch.errors import FrameError
from crampwatch.frames import FLAG_END_OF_STREAM, Channel, Frame, StreamKind
from crampwatch.topics import StreamTopic, data_subscriptions


def _frame(dtype: str = "<i4", n: int = 250) -> Frame:
    rng = np.random.default_rng(0)
    data = (rng.normal(0, 1000, (n, 2))).astype(dtype)
    return Frame(
        kind=StreamKind.EMG,
        seq=42,
        t0_ns=1_700_000_000_123_456_789,
        rate_hz=1000.0,
        channels=(Channel("calf", "uV", 0.1), Channel("tibialis", "mV", 2e-4, offset=-0.5)),
        data=data,
        flags=FLAG_END_OF_STREAM,
    )


@pytest.mark.parametrize("dtype", ["<i2", "<i4", "<f4", "<f8"])
def test_round_trip_is_exact(dtype: str) -> None:
    frame = _frame(dtype)
    back = wire.decode(wire.encode(frame))
    assert (back.kind, back.seq, back.t0_ns, back.rate_hz, back.flags) == (
        frame.kind,
        frame.seq,
        frame.t0_ns,
        frame.rate_hz,
        frame.flags,
    )
    assert back.channels == frame.channels
    assert np.array_equal(back.data, frame.data)
    assert np.array_equal(back.values(), frame.values())
    assert back.end_of_stream


def test_values_apply_scale_and_offset() -> None:
    frame = _frame("<i4", 3)
    expected = frame.data[:, 1] * 2e-4 - 0.5
    assert np.allclose(frame.values()[:, 1], expected)


def _corrupt(payload: bytes, at: int, value: int) -> bytes:
    body = bytearray(payload[:-4])
    body[at] = value
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p[:10], "shorter than"),
        (lambda p: b"XX" + p[2:], "bad magic"),
        (lambda p: _corrupt(p, 2, 9), "unsupported wire version 9"),
        (lambda p: p[:-5] + bytes([p[-5] ^ 0xFF]) + p[-4:], "CRC mismatch"),
        (lambda p: p[:100] + p[104:], "CRC mismatch"),
        (lambda p: _corrupt(p, 4, 7), "unknown stream kind"),
        (lambda p: _corrupt(p, 5, 9), "unknown sample dtype"),
        (lambda p: _corrupt(p, 6, 0), "channel count 0"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrameError, match=reason):
        wire.decode(mutate(wire.encode(_frame())))


def test_length_mismatch_is_named() -> None:
    payload = wire.encode(_frame())
    body = payload[:-4] + b"\x00\x00"  # two stray bytes, valid CRC
    with pytest.raises(FrameError, match="sample bytes, header promises"):
        wire.decode(body + struct.pack("<I", zlib.crc32(body)))


def test_nan_in_float_frame_is_rejected() -> None:
    frame = _frame("<f4")
    frame.data[3, 0] = np.nan
    with pytest.raises(FrameError, match="NaN"):
        wire.decode(wire.encode(frame))


def test_frame_checks_its_own_shape() -> None:
    with pytest.raises(FrameError, match="does not match"):
        Frame(StreamKind.ACC, 0, 0, 50.0, (Channel("x", "g"),), np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(FrameError, match="positive"):
        Frame(StreamKind.ACC, 0, 0, 0.0, (Channel("x", "g"),), np.zeros((5, 1), dtype=np.float32))


def test_topics_round_trip_and_ignore_others() -> None:
    topic = StreamTopic("p-01", "ganglion.2", StreamKind.ACC)
    text = topic.render("cramp/v1")
    assert text == "cramp/v1/p-01/ganglion.2/acc"
    assert StreamTopic.parse(text, "cramp/v1") == topic
    assert StreamTopic.parse("cramp/v1/p-01/dev/status", "cramp/v1") is None
    assert StreamTopic.parse("other/p/d/emg", "cramp/v1") is None
    assert data_subscriptions("cramp/v1") == ["cramp/v1/+/+/emg", "cramp/v1/+/+/acc"]


def test_a_frames_seq_is_read_from_its_header_and_confirmations_round_trip() -> None:
    payload = wire.encode(_frame())
    assert wire.peek_seq(payload) == 42
    assert wire.peek_seq(b"not a frame at all, but long enough to have a header") is None
    seqs = {StreamKind.EMG: 1234, StreamKind.ACC: 0}
    assert wire.decode_confirm(wire.encode_confirm(seqs)) == seqs
    assert wire.decode_confirm(b'{"emg": 5, "ppg": 9}') == {StreamKind.EMG: 5}  # a kind we do not know: skipped


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[1]", "not a JSON object"),
        (b"{", "not JSON"),
        (b'{"emg": -1}', "not a sequence number"),
        (b'{"emg": true}', "not a sequence number"),
        (b'{"emg": "7"}', "not a sequence number"),
        (b"{" + b" " * 2000 + b"}", "longer than"),
    ],
)
def test_a_bad_confirmation_is_refused_with_the_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        wire.decode_confirm(payload)
