"""XDF reading through pyxdf, on files written here by a minimal XDF 1.0 writer, and damaged ones.

pyxdf has no writer, so :class:`XdfWriter` follows the XDF specification (github.com/sccn/xdf wiki,
"Specifications"): the magic ``XDF:``, then chunks ``[NumLengthBytes][Length][Tag][Content]`` with
FileHeader (1), StreamHeader (2), Samples (3), ClockOffset (4) and StreamFooter (6).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
import pytest

from crampwatch.errors import RecordingError
from crampwatch.formats import read_recording
from crampwatch.recording import Annotation

LSL_T0 = 5000.0  # LSL clock (seconds since the recorder machine booted)


def _varlen(n: int) -> bytes:
    if n < 256:
        return b"\x01" + struct.pack("<B", n)
    if n < 2**32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


@dataclass
class Stream:
    name: str
    type: str
    rate_hz: float
    labels: list[str]
    units: list[str | None]
    values: npt.NDArray[np.float64] | list[str]
    t0: float = LSL_T0
    fmt: str = "double64"
    stamps: list[float] | None = None  # for marker streams
    footer: bool = True
    footer_count: int | None = None
    extra_desc: str = ""

    def header_xml(self) -> bytes:
        channels = "".join(
            f"<channel><label>{escape(label)}</label>"
            + (f"<unit>{escape(unit)}</unit>" if unit is not None else "")
            + f"<type>{escape(self.type)}</type></channel>"
            for label, unit in zip(self.labels, self.units, strict=True)
        )
        return (
            '<?xml version="1.0"?><info>'
            f"<name>{escape(self.name)}</name><type>{escape(self.type)}</type>"
            f"<channel_count>{len(self.labels)}</channel_count><nominal_srate>{self.rate_hz}</nominal_srate>"
            f"<channel_format>{self.fmt}</channel_format><created_at>{self.t0}</created_at>"
            f"<desc><channels>{channels}</channels>{self.extra_desc}</desc></info>"
        ).encode()

    def n(self) -> int:
        return len(self.values)

    def stamp(self, i: int) -> float:
        if self.stamps is not None:
            return self.stamps[i]
        return self.t0 + i / (self.rate_hz or 1000.0)  # an irregular (0 Hz) stream still has time stamps

    def footer_xml(self) -> bytes:
        count = self.n() if self.footer_count is None else self.footer_count
        return (
            '<?xml version="1.0"?><info>'
            f"<first_timestamp>{self.stamp(0) if self.n() else 0}</first_timestamp>"
            f"<last_timestamp>{self.stamp(self.n() - 1) if self.n() else 0}</last_timestamp>"
            f"<sample_count>{count}</sample_count></info>"
        ).encode()


@dataclass
class XdfWriter:
    streams: list[Stream] = field(default_factory=list)
    chunk_samples: int = 500

    def write(self, path: Path) -> Path:
        out = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
        for sid, s in enumerate(self.streams, start=1):
            out.append(_chunk(2, struct.pack("<I", sid) + s.header_xml()))
        for sid, s in enumerate(self.streams, start=1):
            out.append(_chunk(4, struct.pack("<Idd", sid, s.t0, 0.0)))
            out.extend(
                _chunk(3, struct.pack("<I", sid) + self._samples(s, start))
                for start in range(0, s.n(), self.chunk_samples)
            )
            out.append(_chunk(4, struct.pack("<Idd", sid, s.t0 + 10.0, 0.0)))
        for sid, s in enumerate(self.streams, start=1):
            if s.footer:
                out.append(_chunk(6, struct.pack("<I", sid) + s.footer_xml()))
        path.write_bytes(b"".join(out))
        return path

    def _samples(self, s: Stream, start: int) -> bytes:
        stop = min(s.n(), start + self.chunk_samples)
        parts = [_varlen(stop - start)]
        for i in range(start, stop):
            parts.append(b"\x08" + struct.pack("<d", s.stamp(i)))
            if s.fmt == "string":
                text = str(s.values[i]).encode()
                parts.append(_varlen(len(text)) + text)
            else:
                dtype = {"double64": "<f8", "float32": "<f4", "int16": "<i2", "int32": "<i4"}[s.fmt]
                values = np.asarray(s.values, dtype=np.float64)[i]
                parts.append(values.astype(dtype).tobytes())
        return b"".join(parts)


def emg_stream(n: int = 2000, rate: float = 1000.0, *, unit: str | None = "microvolts", seed: int = 1) -> Stream:
    data = np.random.default_rng(seed).normal(0.0, 20.0, (n, 2))
    return Stream("Delsys EMG", "EMG", rate, ["calf", "tibialis"], [unit, unit], data)


def acc_stream(n: int = 100, rate: float = 50.0, *, t0: float = LSL_T0, unit: str | None = "g") -> Stream:
    data = np.random.default_rng(2).normal(0.0, 0.01, (n, 3)) + np.array([0.0, 0.0, 1.0])
    return Stream("Shimmer ACC", "Accelerometer", rate, ["acc_x", "acc_y", "acc_z"], [unit] * 3, data, t0=t0)


def test_emg_acc_and_markers_with_their_own_rates_and_starts(tmp_path: Path) -> None:
    emg = emg_stream()
    acc = acc_stream(t0=LSL_T0 + 0.5)  # the accelerometer started half a second later
    markers = Stream(
        "Markers", "Markers", 0.0, ["label"], [None], ["cramp", "spasm:clonus", "before start"],
        fmt="string", stamps=[LSL_T0 + 0.4, LSL_T0 + 1.2, LSL_T0 - 3.0],
    )  # fmt: skip
    path = XdfWriter([emg, acc, markers]).write(tmp_path / "session.xdf")
    rec = read_recording(path)
    assert rec.emg.rate_hz == 1000.0
    assert rec.emg.channel_names == ("calf", "tibialis")
    np.testing.assert_array_equal(rec.emg.data, emg.values)  # double64, microvolts: exact
    assert rec.acc is not None
    assert rec.acc.rate_hz == 50.0
    np.testing.assert_array_equal(rec.acc.data, acc.values)
    assert rec.acc.t0_s == pytest.approx(0.5, abs=1e-6)
    assert rec.annotations == (
        Annotation("cramp", pytest.approx(0.4, abs=1e-6), pytest.approx(0.4, abs=1e-6)),  # type: ignore[arg-type]
        Annotation("spasm", pytest.approx(1.2, abs=1e-6), pytest.approx(1.2, abs=1e-6), "clonus"),  # type: ignore[arg-type]
    )
    assert rec.meta["format"] == "XDF"


def test_acc_that_started_first_is_cut_to_the_emg_start_and_mv_float32_is_converted(tmp_path: Path) -> None:
    emg = emg_stream(unit="mV")
    emg.fmt = "float32"
    acc = acc_stream(200, t0=LSL_T0 - 1.01)  # 1.01 s early: 51 samples (1.02 s) dropped, starts 0.01 s in
    path = XdfWriter([acc, emg]).write(tmp_path / "s.xdf")
    rec = read_recording(path)
    expected_emg = np.asarray(emg.values).astype(np.float32).astype(np.float64) * 1000.0
    np.testing.assert_array_equal(rec.emg.data, expected_emg)
    assert rec.acc is not None
    np.testing.assert_array_equal(rec.acc.data, np.asarray(acc.values)[51:])
    assert rec.acc.t0_s == pytest.approx(0.01, abs=1e-6)


def test_emg_channels_come_from_one_stream_and_can_be_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    other = Stream("Biosemi", "EEG", 512.0, ["C3", "C4", "left emg"], ["microvolts"] * 3, np.zeros((1024, 3)))
    path = XdfWriter([emg_stream(), other]).write(tmp_path / "two.xdf")
    with caplog.at_level(logging.WARNING):
        rec = read_recording(path)
    # Leg muscles win over an EMG-labelled channel of an EEG amplifier, as a clinician would choose.
    assert rec.emg.channel_names == ("calf", "tibialis")
    assert "using the leg EMG channels (calf, tibialis)" in caplog.text and "left emg" in caplog.text
    only_eeg_amp = XdfWriter([other]).write(tmp_path / "eeg_amp.xdf")
    assert read_recording(only_eeg_amp).emg.channel_names == ("left emg",)  # C3, C4 are EEG electrodes
    named = read_recording(path, emg=["calf", "tibialis"])
    assert named.emg.channel_names == ("calf", "tibialis")
    with pytest.raises(RecordingError, match="come from different streams or rates"):
        read_recording(path, emg=["calf", "left emg"])


@pytest.mark.parametrize(
    ("streams", "needle", "channel"),
    [
        ([emg_stream(unit=None)], r"stream 'Delsys EMG' of type EMG has no channel units .* unknown", "calf"),
        ([acc_stream()], r"no EMG channel found.*'acc_x' \(g, 50 Hz, stream 'Shimmer ACC'\)", None),
        ([emg_stream(rate=0.0)], r"EMG sample rate 0\.0 Hz is outside the plausible range", "calf"),
        ([emg_stream(rate=1e6)], r"EMG sample rate 1000000\.0 Hz is outside the plausible range", "calf"),
        ([emg_stream(unit="furlongs")], r"no EMG channel found.*'calf' \(furlongs", None),
    ],
)
def test_unusable_streams_are_errors(tmp_path: Path, streams: list[Stream], needle: str, channel: str | None) -> None:
    path = XdfWriter(streams).write(tmp_path / "bad.xdf")
    with pytest.raises(RecordingError, match=needle) as info:
        read_recording(path)
    assert info.value.path == str(path)
    assert info.value.channel == channel


def test_nan_samples_name_the_channel(tmp_path: Path) -> None:
    emg = emg_stream()
    assert isinstance(emg.values, np.ndarray)
    emg.values[700, 1] = np.nan
    path = XdfWriter([emg]).write(tmp_path / "nan.xdf")
    with pytest.raises(RecordingError, match=r"NaN or infinite, the first at sample 700") as info:
        read_recording(path)
    assert info.value.channel == "tibialis"


def test_truncated_files_are_errors(tmp_path: Path) -> None:
    good = XdfWriter([emg_stream(), acc_stream()]).write(tmp_path / "good.xdf").read_bytes()
    cut_in_data = tmp_path / "cut.xdf"
    cut_in_data.write_bytes(good[: len(good) // 2])
    with pytest.raises(RecordingError, match=r"damaged or truncated|has no footer") as info:
        read_recording(cut_in_data)
    assert info.value.path == str(cut_in_data)
    no_footer = XdfWriter([emg_stream()]).write(tmp_path / "nofooter.xdf")
    stream = emg_stream()
    stream.footer = False
    XdfWriter([stream]).write(no_footer)
    with pytest.raises(RecordingError, match=r"stream 'Delsys EMG' has no footer: the recording was not closed"):
        read_recording(no_footer)
    stream = emg_stream()
    stream.footer_count = 5000
    short = XdfWriter([stream]).write(tmp_path / "short.xdf")
    with pytest.raises(RecordingError, match=r"footer announces 5000 samples but 2000 were read"):
        read_recording(short)


def test_not_an_xdf_file(tmp_path: Path) -> None:
    path = tmp_path / "x.xdf"
    path.write_bytes(b"EDF? no")
    with pytest.raises(RecordingError, match=r"not an XDF file: it starts with b'EDF\?' instead of b'XDF:'"):
        read_recording(path)
