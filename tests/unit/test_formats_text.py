"""The .txt layouts: BioSPPy Simple Text and the Biometrics DataLOG export (UCI lower-limb EMG).

Small files written here test each rule; the real files in shared/data/real/ (read in place, never
copied) test the quirks of the real world, and are skipped when that folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crampwatch.errors import RecordingError
from crampwatch.formats import read_recording
from crampwatch.formats.uci import DATALOG_RATE_HZ

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real recordings not found at {REAL}")

DATALOG = (
    "File Name: 1Nsen.log\r\n"
    "Channel 1: 'RF', 4 values, engineering units: mV, no filters.\r\n"
    "Channel 2: 'EMG ST', 4 values, engineering units: mV, no filters.\r\n"
    "Channel 3: 'FX', 1 values, engineering units: deg, no filters, extrapolated.\r\n"
    "\r\n"
    "0.001\t-0.002\t3.9\r\n"
    "0.0015\t0\t\r\n"
    "-0.003\t0.004\t3.9\r\n"
    "0.0007\t0.0001\t3.9\r\n"
    "\t\t3.9\r\n"
    "\t\t\r\n"
)


def test_datalog_all_mv_channels_are_emg_and_trailing_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "1Nsen.txt"
    path.write_bytes(DATALOG.encode())
    rec = read_recording(path)
    assert rec.emg.rate_hz == DATALOG_RATE_HZ
    assert rec.emg.channel_names == ("RF", "EMG ST")  # not only the EMG-labelled one
    np.testing.assert_allclose(rec.emg.data, np.array([[1, -2], [1.5, 0], [-3, 4], [0.7, 0.1]]), rtol=1e-12)
    assert rec.acc is None
    assert read_recording(path, fmt="datalog", emg=["rf"]).emg.channel_names == ("RF",)


@pytest.mark.parametrize(
    ("replace", "needle", "channel"),
    [
        (("0.0015\t0\t", "0.0015\t\t"), r"line 7: the value is empty \(truncated row\)", "EMG ST"),
        (("-0.003\t0.004\t3.9", "-0.003"), r"line 8 has 1 of 3 columns: the row is truncated", None),
        (
            ("0.0007\t0.0001\t3.9\r\n", ""),
            r"truncated: the header announces 4 values per channel but there are only 3",
            None,
        ),
        (
            (
                "engineering units: mV, no filters.\r\nChannel 2: 'EMG ST', 4 values, engineering units: mV",
                "engineering units: mV, no filters.\r\nChannel 2: 'EMG ST', 4 values, engineering units: deg",
            ),
            None,
            None,
        ),
        (("units: mV", "units: deg"), r"no EMG channel found \(no channel in mV\)", None),
        (("0.001\t-0.002", "0.001\tabc"), r"line 6: the value holds 'abc', not a number", "EMG ST"),
    ],
)
def test_datalog_damage_is_reported(
    tmp_path: Path, replace: tuple[str, str], needle: str | None, channel: str | None
) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(DATALOG.replace(*replace).encode())
    if needle is None:  # one channel in degrees: the other is still EMG
        assert read_recording(path).emg.channel_names == ("RF",)
        return
    with pytest.raises(RecordingError, match=needle) as info:
        read_recording(path)
    assert info.value.channel == channel


BIOSPPY = (
    "# Simple Text Format\n# Sampling Rate (Hz):= 1000.00\n# Resolution:= 12\n# Labels:= EMG\n2048\n2049.0\n2047\n"
)


def test_biosppy_raw_counts_use_the_bitalino_transfer_function(tmp_path: Path) -> None:
    path = tmp_path / "emg.txt"
    path.write_text(BIOSPPY)
    rec = read_recording(path)
    assert rec.emg.rate_hz == 1000.0
    per_count = 3.3 / 1009 / 4096 * 1e6  # µV per ADC count
    np.testing.assert_allclose(rec.emg.data[:, 0], [0.0, per_count, -per_count], atol=1e-9)


def test_biosppy_units_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "two.txt"
    path.write_text(
        "# Simple Text Format\n# Sampling Rate (Hz):= 500\n# Units:= mV\tg\n# Labels:= EMG\tacc\n0.01\t1\n0.02\t1\n"
    )
    rec = read_recording(path)
    np.testing.assert_allclose(rec.emg.data[:, 0], [10.0, 20.0])
    assert rec.acc is None  # one acceleration axis is not an accelerometer


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (BIOSPPY.replace("# Sampling Rate (Hz):= 1000.00\n", ""), "no '# Sampling Rate \\(Hz\\):= ...' line"),
        (BIOSPPY.replace("1000.00", "0"), r"EMG sample rate 0\.0 Hz is outside"),
        (BIOSPPY.replace("2049.0\n", "2049.0 17\n"), r"rows are malformed or truncated"),
        (BIOSPPY.replace("# Resolution:= 12\n", ""), r"no EMG channel found.*'EMG' \(no unit"),
        (BIOSPPY.replace("# Labels:= EMG", "# Labels:= EMG\tX"), r"header names 2 channel\(s\).*rows have 1"),
        ("hello\n1\n", r"unknown text layout \(first line 'hello'\)"),
    ],
)
def test_biosppy_damage_is_reported(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "x.txt"
    path.write_text(content)
    with pytest.raises(RecordingError, match=needle):
        read_recording(path)


#: One real file per quirk: EMG ending before the goniometer column, an empty goniometer cell, a
#: "Digitals combined" column, one muscle labelled "EMG ..." and the others not, bare CR line ends.
QUIRKS = ("N_TXT/10Nmar.txt", "N_TXT/4Nsen.txt", "A_TXT/10Amar.txt", "A_TXT/1Amar.txt", "N_TXT/1Nmar.txt")


@needs_real
@pytest.mark.parametrize("name", QUIRKS)
def test_real_uci_files_with_each_quirk_read(name: str) -> None:
    for path in [REAL / "uci-lower-limb-emg" / name]:
        rec = read_recording(path)
        assert rec.emg.n_samples > 5000, path
        assert rec.emg.data.shape[1] == 4, path
        rms = np.sqrt(np.mean(rec.emg.data**2, axis=0))
        assert np.all((rms > 1.0) & (rms < 1000.0)), (path, rms)  # µV, not mV or V


@needs_real
def test_real_biosppy_files() -> None:
    emg = read_recording(REAL / "biosppy" / "emg_1.txt")
    assert emg.emg.rate_hz == 1000.0
    assert emg.emg.n_samples == 63_880
    centred = emg.emg.data[:, 0] - np.median(emg.emg.data[:, 0])
    assert 1.0 < np.percentile(np.abs(centred), 50) < 10.0  # rest of a few µV, as measured elsewhere
    with pytest.raises(RecordingError, match=r"no EMG channel found.*'acc_x' \(m/s\^2, 100 Hz\)"):
        read_recording(REAL / "biosppy" / "acc.txt")
