"""CSV recordings written with the csv module (the layout in docs/formats.md), and broken ones."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from crampwatch.errors import RecordingError
from crampwatch.formats import read_recording
from crampwatch.units import STANDARD_GRAVITY

EMG_RATE = 1000
ACC_EVERY = 20  # ACC at 50 Hz: a value on every 20th row


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    comments: tuple[str, ...] = (),
    delimiter: str = ",",
) -> Path:
    with open(path, "w", newline="") as fh:
        for line in comments:
            fh.write(f"# {line}\n")
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def night_rows(
    n: int = 2000, *, acc_first: int = 0, seed: int = 0
) -> tuple[list[list[str]], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Rows at 1 kHz: time, two EMG channels, three ACC axes on every 20th row from ``acc_first``."""
    rng = np.random.default_rng(seed)
    emg = rng.normal(0.0, 30.0, (n, 2))
    acc_rows = list(range(acc_first, n, ACC_EVERY))
    acc = rng.normal(0.0, 0.02, (len(acc_rows), 3)) + np.array([0.0, 0.0, 1.0])
    rows = []
    k = 0
    for i in range(n):
        a = [repr(float(v)) for v in acc[k]] if k < len(acc_rows) and acc_rows[k] == i else ["", "", ""]
        if a[0]:
            k += 1
        rows.append([f"{i / EMG_RATE:.4f}", repr(float(emg[i, 0])), repr(float(emg[i, 1])), *a])
    return rows, emg, acc


HEADER = ["time_s", "calf [uV]", "tibialis [uV]", "acc_x [g]", "acc_y [g]", "acc_z [g]"]


def test_emg_and_slower_acc_round_trip_exactly(tmp_path: Path) -> None:
    rows, emg, acc = night_rows()
    path = write_csv(tmp_path / "night.csv", HEADER, rows, comments=("rate_hz=1000", "start=2026-01-01T22:00:00"))
    rec = read_recording(path)
    assert rec.emg.rate_hz == 1000.0
    assert rec.emg.channel_names == ("calf", "tibialis")
    np.testing.assert_array_equal(rec.emg.data, emg)  # repr() text round-trips float64 exactly
    assert rec.acc is not None
    assert rec.acc.rate_hz == 50.0
    assert rec.acc.channel_names == ("acc_x", "acc_y", "acc_z")
    np.testing.assert_array_equal(rec.acc.data, acc)
    assert rec.acc.t0_s == 0.0
    assert rec.meta["start"] == datetime(2026, 1, 1, 22, 0, 0)
    assert rec.meta["format"] == "CSV"


def test_rate_from_time_column_and_units_are_converted(tmp_path: Path) -> None:
    rows, emg, acc = night_rows(1000, acc_first=7)
    header = ["time_s", "calf [mV]", "tibialis [mV]", "acc_x [m/s^2]", "acc_y [m/s^2]", "acc_z [m/s^2]"]
    rec = read_recording(write_csv(tmp_path / "n.csv", header, rows))
    assert rec.emg.rate_hz == 1000.0
    np.testing.assert_allclose(rec.emg.data, emg * 1000.0, rtol=1e-15)
    assert rec.acc is not None
    np.testing.assert_allclose(rec.acc.data, acc / STANDARD_GRAVITY, rtol=1e-15)
    assert rec.acc.t0_s == pytest.approx(0.007)  # the first ACC value is on row 7


def test_tab_separated_file_with_other_columns_and_overrides(tmp_path: Path) -> None:
    rows = [[f"{i / 500:.3f}", str(i % 7), str(-(i % 5)), "12.5"] for i in range(600)]
    path = write_csv(
        tmp_path / "lab.tsv",
        ["time [s]", "left [uV]", "right [uV]", "knee [deg]"],
        rows,
        delimiter="\t",
        comments=("recorded in the lab", "rate_hz=500"),
    )
    rec = read_recording(path)
    assert rec.emg.channel_names == ("left", "right")
    assert rec.acc is None
    only = read_recording(path, emg=["RIGHT"])
    assert only.emg.channel_names == ("right",)
    np.testing.assert_array_equal(only.emg.data[:, 0], [-(i % 5) for i in range(600)])
    with pytest.raises(RecordingError, match="not a voltage") as info:
        read_recording(path, emg=["knee"])
    assert info.value.channel == "knee"


def _valid_rows(n: int = 400) -> list[list[str]]:
    return [[f"{i / 1000:.3f}", f"{np.sin(i):.5f}"] for i in range(n)]


@pytest.mark.parametrize(
    ("content", "needle", "channel"),
    [
        ("time_s,calf [uV]\n0.000,1.0\n0.001,2.0\n0.002", r"line 4 has 1 of the header's 2 fields: .*truncated", None),
        (
            "time_s,calf\n0.000,1.0\n0.001,2.0\n",
            r"column header 'calf' has no unit; write it as 'label \[unit\]'",
            "calf",
        ),
        ("time_s,calf [furlongs]\n0.000,1.0\n0.001,2.0\n", r"no EMG channel found.*'calf' \(furlongs, 1000 Hz\)", None),
        ("time_s,calf [uV]\n0.000,1.0\n0.001,nan\n0.002,3.0\n", r"line 3: value 'nan' is NaN or infinite", "calf [uV]"),
        ("time_s,calf [uV]\n0.000,1.0\n0.001,x1\n", r"line 3: 'x1' is not a number", "calf [uV]"),
        ("# rate_hz=0\ntime_s,calf [uV]\n0,1.0\n0,2.0\n", r"rate_hz=0' must be a positive sample rate", None),
        ("# rate_hz=1e6\ntime_s,calf [uV]\n0,1.0\n0.000001,2.0\n", r"EMG sample rate 1000000\.0 Hz is outside", "calf"),
        ("time_s,calf [uV]\n0,1.0\n0,2.0\n", r"time_s does not increase .* sample rate is zero", None),
        (
            "time_s,calf [uV]\n0.000,1\n0.001,1\n0.002,1\n0.010,1\n0.011,1\n",
            r"time_s is not regular at .* line \d has t=",
            None,
        ),
        (
            "time_s,calf [uV]\n0.000,1\n0.001,\n0.002,1\n0.003,3\n",
            r"values are not on a regular grid of rows \(every 2 row\(s\)\): line 5",
            "calf",
        ),
        ("", r"no header row", None),
        ("# only a comment\n", r"no header row", None),
        ("time_s,calf [uV]\n", r"no data rows", None),
        ("seconds,calf [uV]\n0,1\n", r"first column must be the time in seconds, headed 'time_s'", None),
        ("time_s,calf [uV],calf [mV]\n0,1,1\n0.001,1,1\n", r"column labels must be unique", None),
    ],
)
def test_bad_files_name_file_channel_and_problem(
    tmp_path: Path, content: str, needle: str, channel: str | None
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(RecordingError, match=needle) as info:
        read_recording(path)
    assert info.value.path == str(path)
    assert info.value.channel == channel
    assert str(path) in str(info.value)


def test_acc_axes_on_different_rows_are_an_error(tmp_path: Path) -> None:
    rows, _, _ = night_rows(200)
    for r in rows[:40]:  # acc_z starts one ACC period later than x and y
        r[5] = ""
    path = write_csv(tmp_path / "n.csv", HEADER, rows)
    with pytest.raises(
        RecordingError, match=r"--acc: the named channels come from different streams or rates .*first value on line 42"
    ):
        read_recording(path, acc=["acc_x", "acc_y", "acc_z"])
    rec = read_recording(path)  # auto-detection drops the odd axis and reads without ACC
    assert rec.acc is None


def test_a_recording_of_one_row_needs_the_rate(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", ["time_s", "calf [uV]"], [["0", "1"]])
    with pytest.raises(RecordingError, match="one data row and no '# rate_hz=' line"):
        read_recording(path)
    path = write_csv(tmp_path / "one.csv", ["time_s", "calf [uV]"], [["0", "1"]], comments=("rate_hz=200",))
    assert read_recording(path).emg.n_samples == 1


def test_declared_rate_must_match_the_time_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "n.csv", ["time_s", "calf [uV]"], _valid_rows(), comments=("rate_hz=2000",))
    with pytest.raises(RecordingError, match="time_s is not regular at 2000 Hz"):
        read_recording(path)
