"""Property-based fuzzing (hypothesis) of what outsiders control: frames, stream state, settings.

Properties:

* :func:`crampwatch.wire.decode` returns a frame or raises :class:`FrameError`, for any bytes and for
  well-formed frames (valid CRC) with any header and channel-table values;
* :meth:`detector.stream.DeviceStreams.on_frame`, fed any sequence of frames that decode, raises nothing
  but project errors (:class:`CrampWatchError`): before the edge checks, 12 % of such frames raised
  scipy's ValueError, LinAlgError or OverflowError and stopped the live detector;
* the settings loader turns any ``CRAMP_*`` value and any ``--config`` file into settings or a
  :class:`ConfigError`.

CI runs 2,150 cases in well under 20 s (the ``ci`` profile, the default). For a longer hunt run::

    CRAMP_FUZZ_PROFILE=long .venv/bin/pytest -q -p no:cacheprovider tests/unit/test_fuzz.py

(the ``long`` profile: 100x the cases, no deadline; about 20 minutes). A failure prints the smallest
input it found and the ``@reproduce_failure`` line that replays it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crampwatch import settings as settings_mod
from crampwatch import wire
from crampwatch.errors import ConfigError, CrampWatchError, FrameError
from crampwatch.frames import Frame
from crampwatch.limits import MAX_LIVE_FRAME_S, MAX_LIVE_FRAME_VALUES
from detector.config import DetectorSettings
from detector.model import Model, load_model
from detector.stream import DeviceStreams

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None
)
settings.register_profile("long", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100_000)
PROFILE = os.environ.get("CRAMP_FUZZ_PROFILE", "ci")
# CRAMP_FUZZ_SCALE multiplies the CI case counts for a run of a chosen length (long: 100x by default).
SCALE = int(os.environ.get("CRAMP_FUZZ_SCALE", "100" if PROFILE == "long" else "1"))
settings.load_profile(PROFILE)

START_NS = 1_767_394_800_000_000_000
_MODEL: Model | None = None


def model() -> Model:
    global _MODEL
    if _MODEL is None:
        _MODEL = load_model()
    return _MODEL


# ------------------------------------------------------------------------------------ frames that decode

# Rates and times an attacker would pick: the edges of every limit, tiny, huge, and ordinary ones.
RATES = st.one_of(
    st.sampled_from([1e-300, 1e-3, 0.5, 1.0, 10.0, 41.0, 99.9, 100.0, 200.0, 1000.0, 2000.0, 1e4, 1e4 + 1, 1e6, 1e300]),
    st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False),
)
SCALES = st.one_of(
    st.sampled_from([1e-300, -1.0, 1e-9, 0.5, 1.0, 1e3, 1e300, float("inf"), float("nan")]),
    st.floats(allow_nan=False, allow_infinity=False),
)
UNITS = st.sampled_from(["uV", "mV", "V", "g", "mg", "m/s^2", "", "furlongs", "µV"])
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
DTYPES = {1: "<i2", 2: "<i4", 3: "<f4", 4: "<f8"}


@st.composite
def frame_bytes(draw: st.DrawFn, *, seq: int | None = None, t0_ns: int | None = None, plausible: bool = False) -> bytes:
    """A frame with a valid CRC and consistent lengths, every header value drawn from an attacker's choice.

    ``plausible``: an EMG frame a real sensor could send (rate, channels, unit, scale), to start a stream.
    """
    kind_code = 0 if plausible else draw(st.sampled_from([0, 1]))
    dtype_code = draw(st.sampled_from(sorted(DTYPES)))
    n_ch = 2 if plausible else draw(st.sampled_from([1, 2, 3, 3, 8, 17, 32]))
    n = draw(st.integers(min_value=0, max_value=1200))
    flags = draw(st.sampled_from([0, 0, 0, 1]))
    seq = draw(st.one_of(st.integers(0, 50), st.integers(0, 2**64 - 1))) if seq is None else seq
    t0 = draw(st.one_of(st.integers(START_NS - 10**12, START_NS + 10**12), INT64)) if t0_ns is None else t0_ns
    rate = draw(st.sampled_from([100.0, 200.0, 1000.0, 2000.0]) if plausible else RATES)
    body = [struct.pack("<2sBBBBBBQqdI", b"CW", 1, flags, kind_code, dtype_code, n_ch, 0, seq, t0, rate, n)]
    unit = "uV" if plausible else draw(UNITS)
    for i in range(n_ch):
        scale = 0.5 if plausible else draw(SCALES)
        body.append(struct.pack("<dd", scale, 0.0 if plausible else draw(st.sampled_from([0.0, 0.0, -1e6, 1e308]))))
        for text in (unit, f"c{i}"):
            raw = text.encode()
            body.append(bytes([len(raw)]) + raw)
    dtype = np.dtype(DTYPES[dtype_code])
    fill = "noise" if plausible else draw(st.sampled_from(["zeros", "noise", "extreme"]))
    if fill == "zeros":
        samples = np.zeros((n, n_ch), dtype=dtype)
    elif fill == "noise":
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        samples = (rng.normal(0, 300, (n, n_ch))).astype(dtype)
    else:
        info = np.iinfo(dtype) if dtype.kind == "i" else np.finfo(dtype)
        samples = np.full((n, n_ch), info.max, dtype=dtype)
    body.append(samples.tobytes())
    raw_body = b"".join(body)
    return raw_body + struct.pack("<I", zlib.crc32(raw_body))


def decoded(payload: bytes) -> Frame | None:
    try:
        return wire.decode(payload)
    except FrameError:
        return None


@settings(max_examples=1000 * SCALE)
@given(st.binary(max_size=400))
def test_decode_of_any_bytes_is_a_frame_or_a_frame_error(payload: bytes) -> None:
    decoded(payload)


@settings(max_examples=400 * SCALE)
@given(frame_bytes(), st.data())
def test_decode_of_well_formed_frames_is_a_frame_or_a_frame_error(payload: bytes, data: st.DataObject) -> None:
    frame = decoded(payload)
    if frame is not None:
        assert wire.decode(wire.encode(frame)).seq == frame.seq  # what decodes, encodes again
    # a cut or a flipped byte anywhere is refused, never a crash
    cut = data.draw(st.integers(0, len(payload)))
    decoded(payload[:cut])
    pos = data.draw(st.integers(0, len(payload) - 1))
    decoded(payload[:pos] + bytes([payload[pos] ^ 0xFF]) + payload[pos + 1 :])


# ------------------------------------------------------------------------------- edge checks + stream state


@st.composite
def frame_sequences(draw: st.DrawFn) -> list[bytes]:
    """A few frames for one device: sometimes a valid stream start, then anything, in any order."""
    out = []
    if draw(st.booleans()):
        # a plausible start, so the later frames reach the pipeline and its filters
        out.append(draw(frame_bytes(seq=0, t0_ns=START_NS, plausible=True)))
    for _ in range(draw(st.integers(1, 5))):
        seq = draw(st.one_of(st.integers(0, 5), st.just(2**63), st.integers(0, 2**64 - 1)))
        t0 = draw(st.one_of(st.integers(START_NS - 10**12, START_NS + 10**12), INT64))
        out.append(draw(frame_bytes(seq=seq, t0_ns=t0)))
    return out


@settings(max_examples=250 * SCALE)
@given(frame_sequences())
def test_device_streams_raise_only_project_errors_on_any_decoded_frame(payloads: list[bytes]) -> None:
    streams = DeviceStreams(model(), "p", "d", max_frame_s=MAX_LIVE_FRAME_S, max_frame_values=MAX_LIVE_FRAME_VALUES)
    for payload in payloads:
        frame = decoded(payload)
        if frame is None:
            continue
        with contextlib.suppress(CrampWatchError):
            streams.on_frame(frame)
    with contextlib.suppress(CrampWatchError):
        streams.finish()


# ------------------------------------------------------------------------------------------------- settings

SETTING_NAMES = sorted(DetectorSettings.model_fields)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1e309", "nan", "inf", "true", "mqtt://", "http://[::1", "mqtt://h:99999"]),
)


@settings(max_examples=300 * SCALE)
@given(st.dictionaries(st.sampled_from(SETTING_NAMES), TEXT, max_size=4))
def test_any_environment_gives_settings_or_a_config_error(values: dict[str, str]) -> None:
    env = {DetectorSettings.env_var(name): value for name, value in values.items()}
    with contextlib.suppress(ConfigError):
        settings_mod.load(DetectorSettings, None, env=env)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "").replace('"', "") + '"'


TOML_VALUES = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=20).map(_toml_string))


@settings(max_examples=200 * SCALE)
@given(
    st.one_of(
        st.text(max_size=200),
        st.dictionaries(st.sampled_from([*SETTING_NAMES, "nonsense"]), TOML_VALUES, max_size=4).map(
            lambda d: "\n".join(f"{k} = {v}" for k, v in d.items())
        ),
    )
)
def test_any_config_file_gives_settings_or_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.toml"
        try:
            path.write_text(text, encoding="utf-8")
        except UnicodeEncodeError:
            return  # lone surrogates cannot be a file's text
        with contextlib.suppress(ConfigError):
            settings_mod.load(DetectorSettings, argparse.Namespace(config=path), env={})
