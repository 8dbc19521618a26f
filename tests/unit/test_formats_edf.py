"""EDF/BDF reading and writing against files produced by the real pyedflib, and the format registry."""

from __future__ import annotations

import logging
import math
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyedflib
import pytest

from crampwatch.errors import ConfigError, RecordingError
from crampwatch.formats import available_formats, read_recording, register
from crampwatch.formats.edf import parse_annotation_text, write_edf
from crampwatch.formats.registry import check_signal, get_reader, reader_for
from crampwatch.frames import StreamKind
from crampwatch.recording import Annotation, Recording, Signal
from crampwatch.units import STANDARD_GRAVITY

START = datetime(2024, 3, 1, 22, 30, 0)


def make_recording(
    *,
    emg_rate: float = 1000.0,
    acc_rate: float = 50.0,
    seconds: int = 10,
    emg_names: Sequence[str] = ("EMG L", "EMG R"),
    acc_names: Sequence[str] | None = ("AccX", "AccY", "AccZ"),
    annotations: Sequence[Annotation] = (),
    seed: int = 0,
) -> Recording:
    rng = np.random.default_rng(seed)
    n = int(seconds * emg_rate)
    emg = Signal(StreamKind.EMG, emg_rate, tuple(emg_names), rng.normal(0.0, 40.0, (n, len(emg_names))))
    acc = None
    if acc_names is not None:
        m = int(seconds * acc_rate)
        acc_data = rng.normal(0.0, 0.05, (m, len(acc_names)))
        acc_data[:, -1] += 1.0  # gravity on z
        acc = Signal(StreamKind.ACC, acc_rate, tuple(acc_names), acc_data)
    return Recording(emg, acc, tuple(annotations), meta={"start": START})


def header_tolerance(path: Path, label: str, factor: float = 1.0, *, steps: float = 0.5) -> float:
    """``steps`` digital steps of channel ``label`` in canonical units, from the file's own header."""
    with pyedflib.EdfReader(str(path)) as f:
        i = f.getSignalLabels().index(label)
        step = (f.physical_max(i) - f.physical_min(i)) / (f.digital_max(i) - f.digital_min(i))
    return float(steps * step * factor * (1 + 1e-9))


@dataclass
class Chan:
    label: str
    unit: str
    rate: int
    data: npt.NDArray[np.float64]
    limit: float = 5.0


def write_lowlevel(path: Path, channels: Sequence[Chan], *, bdf: bool = False, annotations: bool = True) -> None:
    """A file written straight through pyedflib.EdfWriter, the way third-party tools produce them."""
    file_type = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    dmax = 8388607 if bdf else 32767
    with pyedflib.EdfWriter(str(path), len(channels), file_type=file_type) as w:
        w.setSignalHeaders(
            [
                {
                    "label": c.label,
                    "dimension": c.unit,
                    "sample_frequency": c.rate,
                    "physical_max": c.limit,
                    "physical_min": -c.limit,
                    "digital_max": dmax,
                    "digital_min": -dmax - 1,
                    "prefilter": "HP:10Hz",
                    "transducer": "AgAgCl",
                }
                for c in channels
            ]
        )
        w.writeSamples([np.ascontiguousarray(c.data) for c in channels])
        if annotations:
            w.writeAnnotation(2.0, 3.5, "Cramp")
            w.writeAnnotation(6.25, -1, "spasm clonus")


def lowlevel_channels(seconds: int = 8, seed: int = 1) -> list[Chan]:
    rng = np.random.default_rng(seed)
    t_emg = 1000 * seconds
    t_acc = 50 * seconds
    return [
        Chan("EMG Gastroc L", "mV", 1000, rng.normal(0, 0.3, t_emg)),
        Chan("EMG Soleus L", "mV", 1000, rng.normal(0, 0.3, t_emg)),
        Chan("ECG", "mV", 1000, rng.normal(0, 1.0, t_emg)),
        Chan("Acc X", "m/s^2", 50, rng.normal(0, 2, t_acc), 40.0),
        Chan("Acc Y", "m/s^2", 50, rng.normal(0, 2, t_acc), 40.0),
        Chan("Acc Z", "m/s^2", 50, rng.normal(9.8, 2, t_acc), 40.0),
        Chan("Temp", "degC", 1, np.full(seconds, 33.0), 50.0),
    ]


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize(("emg_rate", "acc_rate"), [(1000.0, 50.0), (512.0, 32.0)])
@pytest.mark.parametrize("suffix", [".edf", ".bdf"])
def test_write_edf_round_trips_within_half_a_digital_step(
    tmp_path: Path, emg_rate: float, acc_rate: float, suffix: str
) -> None:
    original = make_recording(emg_rate=emg_rate, acc_rate=acc_rate)
    path = tmp_path / f"rec{suffix}"
    write_edf(original, path)

    back = read_recording(path)

    assert back.meta["format"] == ("BDF+" if suffix == ".bdf" else "EDF+")
    assert back.meta["start"] == START
    assert back.source == str(path)
    assert back.emg.rate_hz == emg_rate and back.emg.channel_names == original.emg.channel_names
    assert back.emg.data.shape == original.emg.data.shape
    assert original.acc is not None and back.acc is not None
    assert back.acc.rate_hz == acc_rate and back.acc.channel_names == original.acc.channel_names
    assert back.acc.data.shape == original.acc.data.shape
    for sig_in, sig_out in ((original.emg, back.emg), (original.acc, back.acc)):
        for j, name in enumerate(sig_in.channel_names):
            tol = header_tolerance(path, name)
            assert np.max(np.abs(sig_out.data[:, j] - sig_in.data[:, j])) <= tol


def test_bdf_resolution_is_256_times_finer_than_edf(tmp_path: Path) -> None:
    rec = make_recording(acc_names=None)
    write_edf(rec, tmp_path / "a.edf")
    write_edf(rec, tmp_path / "a.bdf")
    edf_tol = header_tolerance(tmp_path / "a.edf", "EMG L")
    bdf_tol = header_tolerance(tmp_path / "a.bdf", "EMG L")
    assert edf_tol / bdf_tol == pytest.approx(8388607 / 32767)
    err = np.abs(read_recording(tmp_path / "a.bdf").emg.data - rec.emg.data).max()
    assert err <= bdf_tol < 1e-3  # µV


def test_bdf_flag_overrides_the_suffix_and_odd_suffix_needs_it(tmp_path: Path) -> None:
    rec = make_recording(acc_names=None, seconds=2)
    with pytest.raises(RecordingError, match="suffix"):
        write_edf(rec, tmp_path / "a.dat")
    write_edf(rec, tmp_path / "a.rec", bdf=True)
    assert read_recording(tmp_path / "a.rec").meta["format"] == "BDF+"


def test_annotations_round_trip(tmp_path: Path) -> None:
    notes = [
        Annotation("cramp", 1.0, 4.5),
        Annotation("spasm", 5.0, 6.25, "clonus"),
        Annotation("plm", 7.0, 7.0),  # zero duration
        Annotation("lights off", 8.5, 8.5),
    ]
    path = tmp_path / "notes.edf"
    write_edf(make_recording(annotations=notes), path)

    assert read_recording(path).annotations == tuple(notes)


def test_partial_last_record_and_late_start_are_padded_with_edge_values(tmp_path: Path) -> None:
    rec = make_recording(seconds=3)
    assert rec.acc is not None
    emg = Signal(StreamKind.EMG, 1000.0, rec.emg.channel_names, rec.emg.data[:2500])  # 2.5 records
    acc = Signal(StreamKind.ACC, 50.0, rec.acc.channel_names, rec.acc.data[:100], t0_s=0.5)
    path = tmp_path / "pad.edf"
    write_edf(Recording(emg, acc), path)

    back = read_recording(path)

    assert back.emg.n_samples == 3000 and back.acc is not None and back.acc.n_samples == 150
    tol = header_tolerance(path, "EMG L")
    assert np.allclose(back.emg.data[2500:], back.emg.data[2499], atol=0)
    assert np.abs(back.emg.data[:2500] - emg.data).max() <= tol
    assert np.allclose(back.acc.data[:25], acc.data[0], atol=header_tolerance(path, "AccX"))
    assert np.abs(back.acc.data[25:125] - acc.data).max() <= header_tolerance(path, "AccZ")


def test_write_refuses_nan_and_leaves_no_file(tmp_path: Path) -> None:
    rec = make_recording(acc_names=None, seconds=2)
    data = rec.emg.data.copy()
    data[1234, 1] = np.nan
    bad = Recording(Signal(StreamKind.EMG, 1000.0, rec.emg.channel_names, data))
    path = tmp_path / "nan.edf"
    with pytest.raises(RecordingError, match="NaN") as info:
        write_edf(bad, path)
    assert info.value.channel == "EMG R"
    assert not path.exists()


def test_write_refuses_labels_edf_cannot_hold_and_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "long.edf"
    path.write_bytes(b"previous night")
    rec = make_recording(emg_names=("EMG gastrocnemius left",), acc_names=None, seconds=1)
    with pytest.raises(RecordingError, match="16") as info:
        write_edf(rec, path)
    assert info.value.channel == "EMG gastrocnemius left"
    assert path.read_bytes() == b"previous night"  # refused before the file was opened


@pytest.mark.parametrize("peak", [0.0, 1e-6, 0.00123456, 0.98, 1.0, 16.02, 523.7, 40000.4, 9_876_543.0])
def test_physical_range_is_short_symmetric_and_covers_the_peak(tmp_path: Path, peak: float) -> None:
    data = np.array([[0.0], [peak], [-peak / 2]])
    path = tmp_path / "peak.edf"
    write_edf(Recording(Signal(StreamKind.EMG, 100.0, ("EMG",), np.tile(data, (100, 1)))), path)
    with pyedflib.EdfReader(str(path)) as f:
        assert f.physical_max(0) == -f.physical_min(0) >= max(peak, 1e-3)
        assert f.digital_max(0) == -f.digital_min(0) == 32767
    back = read_recording(path).emg.data[:3, 0]
    assert np.abs(back - data[:, 0]).max() <= header_tolerance(path, "EMG")


# ------------------------------------------------------------------- files written by pyedflib directly


def test_lowlevel_file_units_labels_and_rates(tmp_path: Path) -> None:
    chans = lowlevel_channels()
    path = tmp_path / "third_party.edf"
    write_lowlevel(path, chans)

    rec = read_recording(path)

    # ECG is a voltage channel but not EMG; Temp (degC) is neither EMG nor ACC.
    assert rec.emg.channel_names == ("EMG Gastroc L", "EMG Soleus L")
    assert rec.emg.rate_hz == 1000.0
    # edflib truncates physical -> digital when writing, so allow one full step here.
    for j, c in enumerate(chans[:2]):
        tol = header_tolerance(path, c.label, 1000.0, steps=1.0)  # mV -> µV
        assert np.abs(rec.emg.data[:, j] - c.data * 1000.0).max() <= tol
    assert rec.acc is not None
    assert rec.acc.rate_hz == 50.0 and rec.acc.channel_names == ("Acc X", "Acc Y", "Acc Z")
    for j, c in enumerate(chans[3:6]):
        tol = header_tolerance(path, c.label, 1 / STANDARD_GRAVITY, steps=1.0)  # m/s^2 -> g
        assert np.abs(rec.acc.data[:, j] - c.data / STANDARD_GRAVITY).max() <= tol
    assert np.mean(rec.acc.data[:, 2]) == pytest.approx(1.0, abs=0.05)
    assert rec.annotations == (Annotation("cramp", 2.0, 5.5), Annotation("spasm", 6.25, 6.25, "clonus"))


def test_lowlevel_bdf_24_bit(tmp_path: Path) -> None:
    chans = lowlevel_channels()
    path = tmp_path / "third_party.bdf"
    write_lowlevel(path, chans, bdf=True)

    rec = read_recording(path)

    assert rec.meta["format"] == "BDF+"
    tol = header_tolerance(path, "EMG Gastroc L", 1000.0, steps=1.0)
    assert tol < 1e-3  # µV: 24 bit over ±5 mV
    assert np.abs(rec.emg.data[:, 0] - chans[0].data * 1000.0).max() <= tol


def test_emg_and_acc_overrides(tmp_path: Path) -> None:
    path = tmp_path / "third_party.edf"
    write_lowlevel(path, lowlevel_channels())

    rec = read_recording(path, emg=["emg soleus l"], acc=["Acc Z", "Acc Y", "Acc X"])

    assert rec.emg.channel_names == ("EMG Soleus L",)
    assert rec.acc is not None and rec.acc.channel_names == ("Acc Z", "Acc Y", "Acc X")
    assert read_recording(path, emg="ECG", acc=()).acc is None  # a lone string is one label


@pytest.mark.parametrize(
    ("emg", "acc", "channel", "needle"),
    [
        (["EMG Tibialis"], None, "EMG Tibialis", "no channel has this label"),
        (["Temp"], None, "Temp", "'degC' is not a voltage"),
        (["Acc X"], None, "Acc X", "is not a voltage"),
        (None, ["EMG Gastroc L", "Acc Y", "Acc Z"], "EMG Gastroc L", "not an acceleration"),
        (None, ["Acc X", "Acc Y"], None, "exactly 3 labels"),
        (["EMG Gastroc L", "Temp"], None, "Temp", "not a voltage"),
    ],
)
def test_bad_overrides_name_the_channel(
    tmp_path: Path, emg: list[str] | None, acc: list[str] | None, channel: str | None, needle: str
) -> None:
    path = tmp_path / "third_party.edf"
    write_lowlevel(path, lowlevel_channels())
    with pytest.raises(RecordingError, match=needle) as info:
        read_recording(path, emg=emg, acc=acc)
    assert info.value.path == str(path) and info.value.channel == channel
    if needle == "no channel has this label":  # lists what is there
        assert "'EMG Gastroc L' (mV, 1000 Hz)" in str(info.value) and "'Temp' (degC, 1 Hz)" in str(info.value)


def test_named_channels_must_share_a_rate(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    path = tmp_path / "rates.edf"
    write_lowlevel(
        path,
        [Chan("EMG A", "uV", 1000, rng.normal(0, 1, 2000)), Chan("EMG B", "uV", 500, rng.normal(0, 1, 1000))],
    )
    with pytest.raises(RecordingError, match="different sample rates"):
        read_recording(path, emg=["EMG A", "EMG B"])


def test_auto_emg_keeps_the_highest_rate_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "rates.edf"
    write_lowlevel(
        path,
        [
            Chan("EMG A", "uV", 500, rng.normal(0, 1, 1000)),
            Chan("EMG B", "uV", 1000, rng.normal(0, 1, 2000)),
            Chan("EMG C", "uV", 1000, rng.normal(0, 1, 2000)),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="crampwatch.formats"):
        rec = read_recording(path)
    assert rec.emg.channel_names == ("EMG B", "EMG C") and rec.emg.rate_hz == 1000.0
    assert "'EMG A' (uV, 500 Hz)" in caplog.text and "dropping" in caplog.text


def test_emg_labels_win_over_other_voltage_channels(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(4)
    path = tmp_path / "psg.edf"
    write_lowlevel(
        path,
        [
            Chan("C3-A2", "uV", 200, rng.normal(0, 1, 400)),
            Chan("EEG Fpz-Cz", "uV", 200, rng.normal(0, 1, 400)),
            Chan("EOG left", "uV", 200, rng.normal(0, 1, 400)),
            Chan("Leg EMG L", "uV", 200, rng.normal(0, 1, 400)),
            Chan("Chin", "", 200, rng.normal(0, 1, 400)),
            Chan("EMG chin", "counts", 200, rng.normal(0, 1, 400)),
        ],
    )
    with caplog.at_level(logging.INFO, logger="crampwatch.formats"):
        rec = read_recording(path)
    assert rec.emg.channel_names == ("Leg EMG L",)
    assert rec.acc is None
    assert "'EMG chin' not used as EMG: looks like EMG but has unit 'counts'" in caplog.text
    assert "'C3-A2' not used as EMG: EEG" in caplog.text  # the ignored voltage channel is named, with why


def test_unlabelled_voltage_channels_are_emg(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    path = tmp_path / "plain.edf"
    write_lowlevel(
        path,
        [Chan("ch1", "uV", 2000, rng.normal(0, 1, 4000)), Chan("ch2", "V", 2000, rng.normal(0, 1, 4000))],
        annotations=False,
    )
    rec = read_recording(path)
    assert rec.emg.channel_names == ("ch1", "ch2") and rec.annotations == ()


@pytest.mark.parametrize("n_axes", [1, 2, 4])
def test_acc_without_exactly_three_axes_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n_axes: int
) -> None:
    rng = np.random.default_rng(6)
    chans = [Chan("EMG", "uV", 1000, rng.normal(0, 1, 2000))]
    chans += [Chan(f"Accel {i}", "g", 25, rng.normal(0, 0.1, 50), 8.0) for i in range(n_axes)]
    path = tmp_path / "acc.edf"
    write_lowlevel(path, chans)
    with caplog.at_level(logging.WARNING, logger="crampwatch.formats"):
        rec = read_recording(path)
    assert rec.acc is None
    assert f"found {n_axes} acceleration channel(s)" in caplog.text and "--acc" in caplog.text


def test_acc_axes_are_ordered_x_y_z_and_mg_is_converted(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    z = rng.normal(1000, 10, 64)
    chans = [Chan("EMG", "uV", 512, rng.normal(0, 1, 1024))]
    chans += [Chan(f"acc_{a}", "mg", 32, z if a == "z" else rng.normal(0, 10, 64), 4000.0) for a in "zxy"]
    path = tmp_path / "acc.edf"
    write_lowlevel(path, chans)
    rec = read_recording(path)
    assert rec.acc is not None and rec.acc.channel_names == ("acc_x", "acc_y", "acc_z")
    assert rec.emg.rate_hz == 512.0 and rec.acc.rate_hz == 32.0
    assert np.abs(rec.acc.data[:, 2] - z / 1000).max() <= header_tolerance(path, "acc_z", 1e-3, steps=1.0)


@pytest.mark.parametrize(
    ("chans", "needle", "channel"),
    [
        # 10 Hz is not a corrupt header but an envelope/trend channel (skipped, then no EMG is left)
        ([Chan("EMG", "uV", 10, np.zeros(20))], "'EMG' \\(uV, 10 Hz\\): sample rate 10 Hz is far below", "EMG"),
        ([Chan("EMG", "uV", 30000, np.zeros(30000))], "EMG sample rate 30000.0 Hz is outside", "EMG"),
        (
            [Chan("EMG", "uV", 1000, np.zeros(1000))] + [Chan(f"acc{a}", "g", 8000, np.zeros(8000)) for a in "xyz"],
            "ACC sample rate 8000.0 Hz is outside",
            "accx",
        ),
    ],
)
def test_absurd_sample_rates_are_errors(tmp_path: Path, chans: list[Chan], needle: str, channel: str) -> None:
    path = tmp_path / "rate.edf"
    write_lowlevel(path, chans, annotations=False)
    with pytest.raises(RecordingError, match=needle) as info:
        read_recording(path)
    assert info.value.channel == channel and str(path) in str(info.value)


def test_no_emg_channel_lists_channels_and_suggests_emg_flag(tmp_path: Path) -> None:
    path = tmp_path / "temp_only.edf"
    write_lowlevel(path, [Chan("Temp", "degC", 1, np.full(10, 33.0), 50.0)])
    with pytest.raises(RecordingError) as info:
        read_recording(path)
    message = str(info.value)
    assert message.startswith(f"{path}: no EMG channel found")
    assert "'Temp' (degC, 1 Hz)" in message and "--emg LABEL" in message


def test_flat_emg_is_read_with_a_lead_off_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = make_recording(acc_names=None, seconds=2)
    data = rec.emg.data.copy()
    data[:, 1] = 0.0
    path = tmp_path / "flat.edf"
    write_edf(Recording(Signal(StreamKind.EMG, 1000.0, rec.emg.channel_names, data)), path)
    with caplog.at_level(logging.WARNING, logger="crampwatch.formats"):
        back = read_recording(path)
    assert np.ptp(back.emg.data[:, 1]) == 0.0 and abs(back.emg.data[0, 1]) < 1e-12
    assert "'EMG R' is flat" in caplog.text and "lead-off" in caplog.text


# ------------------------------------------------------------------------------------------- bad files


@pytest.fixture
def valid_file(tmp_path: Path) -> Path:
    path = tmp_path / "valid.edf"
    write_edf(make_recording(seconds=10), path)
    return path


def _corrupt(kind: str, valid: Path, target: Path) -> None:
    raw = valid.read_bytes()
    with pyedflib.EdfReader(str(valid)) as f:
        header_bytes = 256 * (f.signals_in_file + 2)  # + the annotation signal
    assert raw[184:192].strip() == str(header_bytes).encode()
    if kind == "random":
        target.write_bytes(np.random.default_rng(8).bytes(20_000))
    elif kind == "text":
        target.write_text("time,emg\n0.000,12.5\n0.001,13.1\n" * 200)
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "short":
        target.write_bytes(raw[:100])
    elif kind == "header":
        target.write_bytes(raw[: header_bytes - 10])
    elif kind == "data":  # cut in the middle of the data records: 4.5 of 10 records are left
        record_bytes = (len(raw) - header_bytes) // 10
        target.write_bytes(raw[: header_bytes + 4 * record_bytes + record_bytes // 2])


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("random", r"not an EDF/BDF file: it starts with b"),
        ("text", r"not an EDF/BDF file: it starts with b'time,emg'.*it contains format errors"),
        ("empty", r"the file is empty"),
        ("short", r"only 100 bytes, shorter than the 256-byte EDF/BDF header"),
        ("header", r"the header is truncated: it should be \d+ bytes.*a read error occurred"),
        (
            "data",
            r"the file is truncated: the header announces 10 data records of 1 s .* 4 complete record.*"
            r"set the number of data records in the header to 4 .*\(Filesize\)",
        ),
    ],
)
def test_corrupt_files_are_recording_errors_naming_the_file(
    tmp_path: Path, valid_file: Path, kind: str, needle: str
) -> None:
    target = tmp_path / f"broken_{kind}.edf"
    _corrupt(kind, valid_file, target)
    with pytest.raises(RecordingError, match=needle) as info:
        read_recording(target)
    assert info.value.path == str(target)
    assert str(info.value).startswith(f"{target}: ")
    assert "[pyedflib: " in str(info.value)  # the library's own words are kept for debugging


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="file not found") as info:
        read_recording(tmp_path / "nope.edf")
    assert info.value.path == str(tmp_path / "nope.edf")


def test_check_signal_rejects_nan_and_inf_naming_channel_and_time() -> None:
    data = np.zeros((2000, 2))
    data[:, 0] = np.sin(np.arange(2000))
    data[1500, 1] = np.inf
    data[1700, 1] = np.nan
    with pytest.raises(
        RecordingError, match=r"2 sample\(s\) are NaN or infinite, the first at sample 1500 \(t=1\.500 s"
    ) as info:
        check_signal("x.edf", Signal(StreamKind.EMG, 1000.0, ("a", "b"), data))
    assert info.value.channel == "b" and info.value.path == "x.edf"


def test_check_signal_rejects_empty_streams_and_bad_rates() -> None:
    with pytest.raises(RecordingError, match="no samples"):
        check_signal("x.edf", Signal(StreamKind.ACC, 50.0, ("x", "y", "z"), np.zeros((0, 3))))
    with pytest.raises(RecordingError, match=r"ACC sample rate 6000\.0 Hz"):
        check_signal("x.edf", Signal(StreamKind.ACC, 6000.0, ("x", "y", "z"), np.zeros((5, 3))))


# -------------------------------------------------------------------------------------------- registry


def test_unknown_suffix_lists_known_formats(tmp_path: Path) -> None:
    path = tmp_path / "rec.xyz"
    path.write_bytes(b"whatever")
    with pytest.raises(
        RecordingError, match=r"unknown file type '\.xyz'; known formats: .*edf \(\.edf \.bdf \.rec\)"
    ) as info:
        read_recording(path)
    assert info.value.path == str(path)


def test_format_by_name_and_by_case_insensitive_suffix(tmp_path: Path, valid_file: Path) -> None:
    assert reader_for(Path("NIGHT.EDF")).name == "edf"
    assert get_reader("EDF") is reader_for(Path("x.bdf"))
    renamed = tmp_path / "night.dat"
    renamed.write_bytes(valid_file.read_bytes())
    assert read_recording(renamed, fmt="edf").emg.n_samples == 10_000
    with pytest.raises(RecordingError, match=r"unknown format 'nosuch'; known formats: .*edf"):
        read_recording(renamed, fmt="nosuch")
    with pytest.raises(ConfigError, match="unknown recording format 'nosuch'"):
        get_reader("nosuch")
    with pytest.raises(RecordingError, match="not a text"):
        read_recording(renamed, fmt="csv")  # a binary file read as CSV is explained, not a crash
    assert available_formats()["edf"] == (".edf", ".bdf", ".rec")


def test_register_refuses_clashing_names_and_suffixes() -> None:
    class Clash:
        name = "edf"
        suffixes = (".foo",)

        def read(self, path: Path, *, emg: Sequence[str] | None, acc: Sequence[str] | None) -> Recording:
            raise NotImplementedError

    class SuffixClash(Clash):
        name = "other"
        suffixes = (".BDF",)

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)
    with pytest.raises(ValueError, match="already belong to 'edf'"):
        register(SuffixClash())
    assert "other" not in available_formats()
    assert available_formats()["edf"] == (".edf", ".bdf", ".rec")


def test_empty_emg_override_is_an_error(valid_file: Path) -> None:
    with pytest.raises(RecordingError, match="--emg was given without channel labels"):
        read_recording(valid_file, emg=[])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cramp", ("cramp", "")),
        ("  CRAMP ", ("cramp", "")),
        ("spasm:clonus", ("spasm", "clonus")),
        ("Spasm / Tonic", ("spasm", "tonic")),
        ("spasm clonus", ("spasm", "clonus")),
        ("plm", ("plm", "")),
        ("Lights off", ("lights off", "")),
        ("turn:left", ("turn", "left")),
        ("", ("", "")),
    ],
)
def test_parse_annotation_text(text: str, expected: tuple[str, str]) -> None:
    assert parse_annotation_text(text) == expected


@pytest.mark.slow
def test_eight_hour_two_channel_file_reads_in_bounded_memory(tmp_path: Path) -> None:
    n = 8 * 3600 * 1000
    rng = np.random.default_rng(9)
    data = rng.normal(0.0, 50.0, (n, 2))
    path = tmp_path / "night.edf"
    write_edf(Recording(Signal(StreamKind.EMG, 1000.0, ("EMG L", "EMG R"), data)), path)
    del data

    tracemalloc.start()
    try:
        rec = read_recording(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rec.emg.data.shape == (n, 2) and math.isclose(rec.duration_s, 8 * 3600)
    assert peak < 1.15 * rec.emg.data.nbytes  # the result plus chunk buffers, no whole-channel copies
