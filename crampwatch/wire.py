"""CrampWatch wire format, version 1: one binary frame per MQTT message.

All integers are little-endian. One frame carries one :class:`~crampwatch.frames.Frame`::

    offset size  field
    0      2     magic            b"CW"
    2      1     version          1
    3      1     flags            bit 0: end of stream
    4      1     kind             0 = EMG, 1 = ACC
    5      1     dtype            1 = int16, 2 = int32, 3 = float32, 4 = float64
    6      1     n_channels       1..32
    7      1     reserved         0
    8      8     seq              u64, per stream, +1 per frame
    16     8     t0_ns            i64, device time of the first sample, ns
    24     8     rate_hz          f64, nominal sample rate
    32     4     n_samples        u32, samples per channel
    36     ...   channels         n_channels x (f64 scale, f64 offset, u8 len, unit utf-8,
                                  u8 len, name utf-8)
    ...    ...   samples          n_samples x n_channels values of dtype, sample-major (interleaved)
    end-4  4     crc32            zlib.crc32 of every byte before it

Physical value = count x scale + offset, in the channel's unit (for example "uV" or "g"). Decoding
checks magic, version, lengths and the CRC and raises :class:`~crampwatch.errors.FrameError` naming the
failed check, so a corrupt message is rejected with a reason instead of poisoning a stream.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from typing import Any, Final

import numpy as np

from .errors import FrameError
from .frames import Channel, Frame, StreamKind

MAGIC: Final = b"CW"
VERSION: Final = 1
MAX_CHANNELS: Final = 32
MAX_SAMPLES: Final = 1_000_000

_HEADER = struct.Struct("<2sBBBBBBQqdI")
_CRC = struct.Struct("<I")
_SCALE = struct.Struct("<dd")

_KIND_CODES: Final = {StreamKind.EMG: 0, StreamKind.ACC: 1}
_KINDS: Final = {code: kind for kind, code in _KIND_CODES.items()}
_DTYPE_CODES: Final[dict[np.dtype[Any], int]] = {
    np.dtype("<i2"): 1,
    np.dtype("<i4"): 2,
    np.dtype("<f4"): 3,
    np.dtype("<f8"): 4,
}
_DTYPES: Final[dict[int, np.dtype[Any]]] = {code: dtype for dtype, code in _DTYPE_CODES.items()}


def _pack_text(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise FrameError(f"{what} {text!r} is longer than 255 bytes")
    return bytes([len(raw)]) + raw


def encode(frame: Frame) -> bytes:
    """Serialise a frame to wire format v1."""
    dtype = frame.data.dtype.newbyteorder("<")
    if dtype not in _DTYPE_CODES:
        raise FrameError(f"sample dtype {frame.data.dtype} not supported; use int16, int32, float32 or float64")
    if not 1 <= len(frame.channels) <= MAX_CHANNELS:
        raise FrameError(f"{len(frame.channels)} channels; a frame carries 1..{MAX_CHANNELS}")
    parts = [
        _HEADER.pack(
            MAGIC,
            VERSION,
            frame.flags & 0xFF,
            _KIND_CODES[frame.kind],
            _DTYPE_CODES[dtype],
            len(frame.channels),
            0,
            frame.seq,
            frame.t0_ns,
            float(frame.rate_hz),
            frame.n_samples,
        )
    ]
    for ch in frame.channels:
        parts.append(_SCALE.pack(ch.scale, ch.offset))
        parts.append(_pack_text(ch.unit, "unit"))
        parts.append(_pack_text(ch.name, "channel name"))
    parts.append(np.ascontiguousarray(frame.data, dtype=dtype).tobytes())
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode(payload: bytes) -> Frame:
    """Parse wire format v1, checking every length and the CRC.

    Raises:
        FrameError: with the reason (too short, bad magic, unsupported version, CRC mismatch, ...).
    """
    if len(payload) < _HEADER.size + _CRC.size:
        raise FrameError(f"{len(payload)} bytes is shorter than the {_HEADER.size + 4}-byte minimum")
    body, (crc,) = payload[:-4], _CRC.unpack(payload[-4:])
    magic, version, flags, kind_code, dtype_code, n_ch, _, seq, t0_ns, rate, n = _HEADER.unpack_from(body)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r}, expected {MAGIC!r} (not a CrampWatch frame)")
    if version != VERSION:
        raise FrameError(f"unsupported wire version {version}; this build reads version {VERSION}")
    if zlib.crc32(body) != crc:
        raise FrameError("CRC mismatch: the frame was corrupted or truncated in transit")
    if kind_code not in _KINDS:
        raise FrameError(f"unknown stream kind code {kind_code}")
    if dtype_code not in _DTYPES:
        raise FrameError(f"unknown sample dtype code {dtype_code}")
    if not 1 <= n_ch <= MAX_CHANNELS:
        raise FrameError(f"channel count {n_ch} outside 1..{MAX_CHANNELS}")
    if n > MAX_SAMPLES:
        raise FrameError(f"{n} samples per channel exceeds the {MAX_SAMPLES} limit")
    # math.isfinite on these scalars: numpy's costs ~1 µs a call, a few percent of a live frame's work.
    if not (rate > 0 and math.isfinite(rate)):
        raise FrameError(f"sample rate {rate!r} is not a positive number")
    offset = _HEADER.size
    channels = []
    try:
        for _ in range(n_ch):
            scale, zero = _SCALE.unpack_from(body, offset)
            offset += _SCALE.size
            unit_len = body[offset]
            unit = body[offset + 1 : offset + 1 + unit_len].decode("utf-8")
            offset += 1 + unit_len
            name_len = body[offset]
            name = body[offset + 1 : offset + 1 + name_len].decode("utf-8")
            offset += 1 + name_len
            if not (math.isfinite(scale) and scale != 0 and math.isfinite(zero)):
                raise FrameError(f"channel {name!r} has unusable scale {scale!r} / offset {zero!r}")
            channels.append(Channel(name=name, unit=unit, scale=scale, offset=zero))
    except (IndexError, struct.error, UnicodeDecodeError) as err:
        raise FrameError(f"channel table is truncated or not UTF-8 ({err})") from None
    dtype = _DTYPES[dtype_code]
    expected = n * n_ch * dtype.itemsize
    if len(body) - offset != expected:
        raise FrameError(
            f"payload has {len(body) - offset} sample bytes, header promises {expected} "
            f"({n} samples x {n_ch} channels x {dtype.itemsize} B)"
        )
    data = np.frombuffer(body, dtype=dtype, offset=offset).reshape(n, n_ch)
    if dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise FrameError("float samples contain NaN or infinity")
    return Frame(
        kind=_KINDS[kind_code],
        seq=seq,
        t0_ns=t0_ns,
        rate_hz=rate,
        channels=tuple(channels),
        data=data,
        flags=flags,
    )


def peek_seq(payload: bytes) -> int | None:
    """The sequence number of a frame from its header alone (no CRC check), or None if it is no v1 frame.

    For the detector's confirmations: a frame is confirmed once journalled, whether or not it decodes
    later, so the collector does not keep resending a frame the detector has taken (and rejected).
    """
    if len(payload) < _HEADER.size + _CRC.size or payload[:2] != MAGIC or payload[2] != VERSION:
        return None
    seq: int = _HEADER.unpack_from(payload)[7]
    return seq


# -- confirmations: detector -> collector, on <device prefix>/<patient>/<device>/confirm ---------------
#
# JSON ``{"emg": 1234, "acc": 1230}``: per stream kind, the sequence number of the newest frame of that
# stream the detector has journalled and committed. Cumulative: every frame of the stream sent before it
# is journalled too (a collector sends each stream in order), so a lost confirmation is covered by the
# next one.

MAX_CONFIRM_BYTES: Final = 1024


def encode_confirm(seqs: dict[StreamKind, int]) -> bytes:
    return json.dumps({kind.value: seq for kind, seq in sorted(seqs.items())}, separators=(",", ":")).encode()


def decode_confirm(payload: bytes) -> dict[StreamKind, int]:
    """The confirmed sequence number per stream kind; FrameError saying what is wrong for anything else."""
    if len(payload) > MAX_CONFIRM_BYTES:
        raise FrameError(f"confirmation of {len(payload)} bytes is longer than {MAX_CONFIRM_BYTES}")
    try:
        raw = json.loads(payload)
    except ValueError as err:
        raise FrameError(f"confirmation is not JSON ({err})") from None
    if not isinstance(raw, dict):
        raise FrameError("confirmation is not a JSON object")
    out: dict[StreamKind, int] = {}
    for key, value in raw.items():
        try:
            kind = StreamKind(key)
        except ValueError:
            continue  # a newer detector's stream kind: not ours to confirm
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FrameError(f"confirmation for {key}: {value!r} is not a sequence number")
        out[kind] = value
    return out
