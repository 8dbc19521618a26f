"""The channel choice on real file layouts: Sleep-EDF, a clinical PSG export, BDF+, EDF+D, real files.

Layouts are written with pyedflib the way the recorders lay them out (labels, units, rates, transducer and
prefilter fields). Files written by other tools are read where a machine has them: third-party recordings
are not committed to this repository, so the tests look in ``$CRAMP_REAL_EDF`` or ``shared/data/real/edf``
beside the checkout (tests/data/README.md names each file and its source) and skip without them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from crampwatch.errors import RecordingError
from crampwatch.formats import read_recording
from crampwatch.formats.columns import Column, is_leg_emg, not_raw_emg


def _real_edf_dir() -> Path:
    import os

    if os.environ.get("CRAMP_REAL_EDF"):
        return Path(os.environ["CRAMP_REAL_EDF"])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "real" / "edf"
        if candidate.is_dir():
            return candidate
    return Path("shared/data/real/edf")


def real_file(name: str) -> Path:
    """A third-party file by another tool, or a skip saying where to put it."""
    path = _real_edf_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} not found in {path.parent} (set CRAMP_REAL_EDF; see tests/data/README.md)")
    return path


SECONDS = 30


@dataclass(frozen=True)
class Sig:
    label: str
    unit: str
    rate: int
    transducer: str = ""
    prefilter: str = ""
    limit: float = 500.0


def write(path: Path, sigs: Sequence[Sig], *, bdf: bool = False, n_annotation_signals: int = 1) -> None:
    file_type = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    dmax = 8388607 if bdf else 32767
    rng = np.random.default_rng(0)
    with pyedflib.EdfWriter(str(path), len(sigs), file_type=file_type) as w:
        if n_annotation_signals > 1:
            w.set_number_of_annotation_signals(n_annotation_signals)
        w.setSignalHeaders(
            [
                {
                    "label": s.label,
                    "dimension": s.unit,
                    "sample_frequency": s.rate,
                    "physical_max": s.limit,
                    "physical_min": -s.limit,
                    "digital_max": dmax,
                    "digital_min": -dmax - 1,
                    "prefilter": s.prefilter,
                    "transducer": s.transducer,
                }
                for s in sigs
            ]
        )
        w.writeSamples([np.clip(rng.normal(0.0, s.limit / 10, s.rate * SECONDS), -s.limit, s.limit) for s in sigs])
        for k in range(3 * n_annotation_signals):  # more annotations than one annotation signal holds per record
            w.writeAnnotation(1.0 + k * 0.5, 0.25, "spasm:clonus" if k % 2 else "Cramp")


AGCL = "Ag-AgCl electrodes"
CASSETTE = "HP:0.5Hz LP:100Hz [enhanced cassette BW]"
#: SC4001E0-PSG.edf of Sleep-EDF Expanded, header fields as in the real file (tests/data/).
SLEEP_EDF = [
    Sig("EEG Fpz-Cz", "uV", 100, AGCL, CASSETTE),
    Sig("EEG Pz-Oz", "uV", 100, AGCL, CASSETTE),
    Sig("EOG horizontal", "uV", 100, AGCL, CASSETTE),
    Sig("Resp oro-nasal", "", 1, "Oral-nasal thermistors", "HP:0.03Hz LP:0.9Hz"),
    Sig("EMG submental", "uV", 1, AGCL, "HP:16Hz Rectification LP:0.7Hz", 5.0),
    Sig("Temp rectal", "DegC", 1, "Rectal thermistor", "", 50.0),
    Sig("Event marker", "", 1, "Marker button", "Hold during 2 seconds"),
]
#: A clinical PSG export (AASM montage, 200 Hz; leg EMG as LAT/RAT).
CLINICAL = [
    Sig("F4-M1", "uV", 200, AGCL, "HP:0.3Hz LP:35Hz"),
    Sig("C4-M1", "uV", 200, AGCL, "HP:0.3Hz LP:35Hz"),
    Sig("O2-M1", "uV", 200, AGCL, "HP:0.3Hz LP:35Hz"),
    Sig("E1-M2", "uV", 200, AGCL, "HP:0.3Hz LP:35Hz"),
    Sig("Chin1-Chin2", "uV", 200, AGCL, "HP:10Hz LP:100Hz"),
    Sig("LAT", "uV", 200, AGCL, "HP:10Hz LP:100Hz"),
    Sig("RAT", "uV", 200, AGCL, "HP:10Hz LP:100Hz"),
    Sig("ECG", "mV", 200, AGCL, "HP:0.3Hz LP:70Hz", 5.0),
    Sig("SpO2", "%", 1, "Oximeter", "", 100.0),
    Sig("Pleth", "uV", 100, "Oximeter", ""),
    Sig("Position", "", 1, "Position sensor", "", 10.0),
    Sig("DC3", "V", 200, "", "", 5.0),
]


def notes(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Channel label -> the one-line note saying why it was not used as EMG."""
    out = {}
    for r in caplog.records:
        msg = r.getMessage()
        if " not used as EMG: " in msg:
            label = msg.split("channel ", 1)[1].split(" not used as EMG: ")[0].strip("'")
            assert label not in out, f"two notes for {label}"
            out[label] = msg.split(" not used as EMG: ")[1]
    return out


# ------------------------------------------------------------------------------------------- Sleep-EDF


def test_sleep_edf_layout_is_rejected_with_every_channel_and_why_not_one_line_per_channel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "SC4001E0-PSG.edf"
    write(path, SLEEP_EDF)
    with caplog.at_level(logging.INFO, logger="crampwatch.formats"), pytest.raises(RecordingError) as info:
        read_recording(path)
    message = str(info.value)
    # No raw EMG: the chin channel is a 1 Hz rectified envelope. The error is not about a corrupt rate.
    assert "no EMG channel found" in message and "outside the plausible range" not in message
    assert "'EMG submental' (uV, 1 Hz): prefilter says an envelope" in message
    for label, why in [
        ("EEG Fpz-Cz", "EEG"),
        ("EEG Pz-Oz", "EEG"),
        ("EOG horizontal", "EOG"),
        ("Resp oro-nasal", "respiration"),
        ("Temp rectal", "temperature"),
        ("Event marker", "event marker"),
    ]:
        assert f"'{label}'" in message and why in notes(caplog)[label]
    assert message.rstrip().endswith("name it with --emg LABEL")
    assert len(notes(caplog)) == 7 and "\n" not in "".join(notes(caplog).values())


def test_sleep_edf_envelope_is_recognised_by_its_rate_alone(tmp_path: Path) -> None:
    """Without the prefilter text the 1 Hz rate still says envelope; the error names that channel."""
    path = tmp_path / "psg.edf"
    write(path, [Sig(s.label, s.unit, s.rate, limit=s.limit) for s in SLEEP_EDF])
    with pytest.raises(RecordingError, match=r"'EMG submental' \(uV, 1 Hz\): sample rate 1 Hz is far below") as info:
        read_recording(path)
    assert info.value.channel == "EMG submental"


def test_sleep_edf_with_a_raw_leg_emg_channel_is_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "psg_leg.edf"
    write(path, [*SLEEP_EDF, Sig("EMG tibialis L", "uV", 200, AGCL, "HP:10Hz")])
    with caplog.at_level(logging.INFO, logger="crampwatch.formats"):
        rec = read_recording(path)
    assert rec.emg.channel_names == ("EMG tibialis L",) and rec.emg.rate_hz == 200.0
    assert set(notes(caplog)) == {s.label for s in SLEEP_EDF}
    assert [a.type for a in rec.annotations[:2]] == ["cramp", "spasm"]


def test_explicit_emg_is_the_final_word_but_a_1_hz_channel_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "psg_leg.edf"
    write(path, [*SLEEP_EDF, Sig("EMG tibialis L", "uV", 200)])
    assert read_recording(path, emg=["EEG Fpz-Cz"]).emg.channel_names == ("EEG Fpz-Cz",)
    with pytest.raises(RecordingError, match=r"EMG sample rate 1\.0 Hz is outside") as info:
        read_recording(path, emg=["EMG submental"])
    assert info.value.channel == "EMG submental"


# ---------------------------------------------------------------------------------------- clinical PSG


def test_clinical_psg_export_uses_the_leg_emg(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "clinical.edf"
    write(path, CLINICAL)
    with caplog.at_level(logging.INFO, logger="crampwatch.formats"):
        rec = read_recording(path)
    assert rec.emg.channel_names == ("LAT", "RAT") and rec.emg.rate_hz == 200.0 and rec.acc is None
    why = notes(caplog)
    assert set(why) == {"F4-M1", "C4-M1", "O2-M1", "E1-M2", "ECG", "SpO2", "Pleth", "Position", "DC3"}
    assert why["F4-M1"].startswith("EEG") and why["O2-M1"].startswith("EEG") and why["E1-M2"].startswith("EOG")
    assert "DC input" in why["DC3"] and "oximetry" in why["Pleth"] and "oximetry" in why["SpO2"]
    assert "body position" in why["Position"] and "ECG" in why["ECG"]
    assert "using the leg EMG channels (LAT, RAT)" in caplog.text and "Chin1-Chin2" in caplog.text


def test_clinical_psg_without_leg_emg_falls_back_to_the_chin(tmp_path: Path) -> None:
    path = tmp_path / "clinical.edf"
    write(path, [s for s in CLINICAL if s.label not in ("LAT", "RAT")])
    assert read_recording(path).emg.channel_names == ("Chin1-Chin2",)
    assert read_recording(path, emg=["C4-M1"]).emg.channel_names == ("C4-M1",)  # --emg is the final word


def test_clinical_psg_with_only_eeg_and_aux_channels_lists_them_all(tmp_path: Path) -> None:
    path = tmp_path / "eeg_only.edf"
    sigs = [s for s in CLINICAL if s.label not in ("LAT", "RAT", "Chin1-Chin2")]
    write(path, sigs)
    with pytest.raises(RecordingError, match="no EMG channel found") as info:
        read_recording(path)
    assert all(f"'{s.label}'" in str(info.value) for s in sigs) and "--emg LABEL" in str(info.value)


# ----------------------------------------------------------------------------------- BDF+ and EDF+D


def test_bdf_plus_with_several_annotation_channels(tmp_path: Path) -> None:
    path = tmp_path / "multi_annot.bdf"
    write(path, [*CLINICAL[:3], Sig("Leg/L", "uV", 512), Sig("Leg/R", "uV", 512)], bdf=True, n_annotation_signals=3)
    raw = path.read_bytes()
    n_signals = int(raw[252:256])
    labels = [raw[256 + 16 * i : 256 + 16 * (i + 1)].decode().strip() for i in range(n_signals)]
    assert labels.count("BDF Annotations") == 3  # really three annotation channels in the file

    rec = read_recording(path)

    assert rec.meta["format"] == "BDF+"
    assert rec.emg.channel_names == ("Leg/L", "Leg/R") and rec.emg.rate_hz == 512.0
    assert len(rec.annotations) == 9
    assert [(a.type, a.subtype) for a in rec.annotations[:2]] == [("cramp", ""), ("spasm", "clonus")]


def test_edf_plus_d_is_rejected_in_one_line_with_the_fix(tmp_path: Path) -> None:
    """pyedflib cannot write EDF+D, so an EDF+C file gets the EDF+D mark in its reserved header field."""
    path = tmp_path / "discontinuous.edf"
    write(path, [Sig("LAT", "uV", 200)])
    raw = bytearray(path.read_bytes())
    assert raw[192:197] == b"EDF+C"
    raw[192:197] = b"EDF+D"
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError) as info:
        read_recording(path)
    message = str(info.value)
    assert "EDF+D/BDF+D (discontinuous) recordings are not supported" in message
    assert "export the recording as continuous EDF+C/BDF+C" in message and "\n" not in message


# ----------------------------------------------------------------------------- files by other tools


@pytest.mark.parametrize("name", ["sleep_edf_SC4001E0_5min.edf", "sleep_edf_SC4001E0_5min_edfio.bdf"])
def test_real_sleep_edf_file_is_rejected_naming_each_channel(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="crampwatch.formats"), pytest.raises(RecordingError) as info:
        read_recording(real_file(name))
    message = str(info.value)
    assert "no EMG channel found" in message and "outside the plausible range" not in message
    assert "'EMG submental' (uV, 1 Hz): prefilter says an envelope" in message
    assert set(notes(caplog)) == {s.label for s in SLEEP_EDF}
    # and a channel named explicitly is read from the real file: 5 min of 100 Hz EEG
    rec = read_recording(real_file(name), emg=["EEG Fpz-Cz"])
    assert rec.emg.rate_hz == 100.0 and rec.emg.n_samples == 300 * 100


def test_real_biosemi_cap_file_uses_the_emg_not_128_eeg_electrodes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="crampwatch.formats"):
        rec = read_recording(real_file("biosemi_128ch_mne_test.edf"))
    assert rec.emg.channel_names == ("Ergo-Left", "Ergo-Right") and rec.emg.rate_hz == 512.0
    assert "EEG cap electrodes" in caplog.text and "'Status' not used as EMG: label says an event marker" in caplog.text
    assert rec.annotations[0].type == "start"


def test_pyedflib_test_generator_file() -> None:
    """EDFbrowser's test generator (shipped in the pyedflib package): 200 Hz uV test signals, no labels."""
    path = Path(pyedflib.__file__).parent / "data" / "test_generator.edf"
    rec = read_recording(path)
    assert rec.emg.rate_hz == 200.0 and "squarewave" in rec.emg.channel_names
    assert "pulse" not in rec.emg.channel_names  # "pulse" is how PSGs name the oximeter's pulse rate


# ------------------------------------------------------------------------------------------ rules


@pytest.mark.parametrize(
    ("label", "unit", "rate", "transducer", "prefilter", "why"),
    [
        ("EMG RMS", "uV", 1000, "", "", "envelope"),
        ("EMG L", "uV", 1000, "", "LP:5Hz", "removes the EMG band"),
        ("Tib L", "uV", 1000, "", "HP:10Hz Rectification", "envelope"),
        ("C3-A2", "uV", 256, "", "", "EEG"),
        ("Fp1", "uV", 256, "", "", "EEG"),
        ("LOC-A2", "uV", 256, "", "", "EOG"),
        ("EKG", "mV", 256, "", "", "ECG"),
        ("SaO2", "%", 1, "", "", "oximetry"),
        ("Thorax", "uV", 256, "", "", "respiration"),
        ("Abdomen", "uV", 256, "", "", "respiration"),
        ("Flow", "uV", 256, "", "", "respiration"),
        ("Light", "", 1, "", "", "light"),
        ("DC 7", "mV", 256, "", "", "DC input"),
        ("ch4", "uV", 256, "Thermistor", "", "temperature"),
        ("calf", "uV", 30_000, "", "", "not a plausible EMG rate"),
        ("calf", "counts", 1000, "", "", "looks like EMG"),
    ],
)
def test_not_raw_emg(label: str, unit: str, rate: float, transducer: str, prefilter: str, why: str) -> None:
    result = not_raw_emg(Column(0, label, unit, rate, transducer=transducer, prefilter=prefilter))
    assert result is not None and why in result[0]


@pytest.mark.parametrize(
    "label", ["EMG tibialis", "Tib L", "LAT", "RAT", "Leg/L", "L Leg", "Gastroc R", "soleus", "TA1-TA2", "calf"]
)
def test_leg_emg_labels_are_raw_emg_and_preferred(label: str) -> None:
    assert not_raw_emg(Column(0, label, "uV", 500)) is None and is_leg_emg(label)


@pytest.mark.parametrize("label", ["EMG chin", "Chin1-Chin2", "ch1", "EMG A", "EMG C", "Ergo-Left"])
def test_other_raw_emg_labels(label: str) -> None:
    assert not_raw_emg(Column(0, label, "uV", 500)) is None and not is_leg_emg(label)


@pytest.mark.parametrize("prefilter", ["HP:DC LP:500Hz", "HP:10Hz LP:450Hz N:50Hz", "HP: 0.1Hz LP: 1kHz"])
def test_prefilters_of_raw_emg(prefilter: str) -> None:
    assert not_raw_emg(Column(0, "LAT", "uV", 1000, transducer=AGCL, prefilter=prefilter)) is None
