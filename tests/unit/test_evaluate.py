"""``cramp-detector evaluate``: truth from CSV or EDF+ annotations, folders, event CSVs, JSON, clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from crampwatch.formats.edf import write_edf
from crampwatch.recording import Annotation, Recording, write_annotations
from crampwatch.simulate import SimParams, simulate
from detector.cli import main
from detector.evaluate import MissingTruthError, evaluate, file_cases, make_detector
from detector.events import CSV_FIELDS

SCORED = ("cramp", "spasm")


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Recording]:
    """Two tiny simulated nights (4 min, 500 Hz), each with a cramp and a spasm in its truth."""
    out = {seed: simulate(240, seed, params=SimParams(emg_rate_hz=500.0), event_density=3) for seed in (5, 6)}
    for rec in out.values():
        assert {a.type for a in rec.annotations} >= set(SCORED)
    return out


def _without_annotations(rec: Recording) -> Recording:
    return Recording(emg=rec.emg, acc=rec.acc, source=rec.source)


def _write_events(path: Path, rows: list[tuple[str, float, float]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for kind, onset, offset in rows:
            writer.writerow([kind, onset, offset, 1.0, 100.0, "", "p", "d"])


def _check_pooled(report: dict[str, object]) -> None:
    """Pooled counts and hours are the sums of the per-recording ones."""
    pooled = report["pooled"]
    recordings = report["recordings"]
    assert isinstance(pooled, dict) and isinstance(recordings, list)
    assert pooled["recordings"] == len(recordings)
    assert pooled["hours"] == pytest.approx(sum(r["hours"] for r in recordings), abs=1e-3)
    for kind, s in pooled["scores"].items():
        for key in ("true", "predicted", "matched"):
            assert s[key] == sum(r["scores"][kind][key] for r in recordings)
        if s["predicted"]:
            assert s["precision"] == pytest.approx(s["matched"] / s["predicted"], abs=1e-4)


def test_one_recording_with_truth_csv_prints_table_and_writes_json(
    nights: dict[int, Recording], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = nights[5]
    write_edf(_without_annotations(rec), tmp_path / "night.edf")
    write_annotations(tmp_path / "labels.csv", rec.annotations)
    out = tmp_path / "scores.json"
    argv = ["evaluate", str(tmp_path / "night.edf"), "--truth", str(tmp_path / "labels.csv")]
    assert main([*argv, "--json", str(out), "--no-progress"]) == 0  # the shipped model
    printed = capsys.readouterr().out
    assert "night.edf" in printed and "precision" not in printed  # the table's own headers
    assert all(word in printed for word in ("type", "prec", "recall", "F1", "FA/h", "onset err s", "cramp", "spasm"))
    assert "spasm subtype" in printed  # accuracy over matched spasms, or that none was matched
    report = json.loads(out.read_text())
    assert report["detector"]["name"] == "model" and report["types"] == list(SCORED)
    assert report["pooled"]["subtypes"]["matched"] <= report["pooled"]["scores"]["spasm"]["matched"]
    (row,) = report["recordings"]
    assert row["truth"] == str(tmp_path / "labels.csv") and row["emg_rate_hz"] == 500.0
    assert row["hours"] == pytest.approx(240 / 3600, abs=1e-3) and row["x_real_time"] > 1
    assert {k: row["scores"][k]["true"] for k in SCORED} == {"cramp": 1, "spasm": 1}
    _check_pooled(report)


def test_folder_finds_truth_files_and_pools(nights: dict[int, Recording], tmp_path: Path) -> None:
    write_edf(_without_annotations(nights[5]), tmp_path / "a.edf")
    write_annotations(tmp_path / "a.truth.csv", nights[5].annotations)
    write_edf(_without_annotations(nights[6]), tmp_path / "b.edf")
    write_annotations(tmp_path / "b.csv", nights[6].annotations)
    detect, described = make_detector("rms")
    result = evaluate(file_cases([tmp_path]), detect, detector=described, progress=False)
    assert [Path(r.name).name for r in result.recordings] == ["a.edf", "b.edf"]  # truth CSVs are not recordings
    assert [Path(r.truth).name for r in result.recordings] == ["a.truth.csv", "b.csv"]
    assert result.pooled["cramp"].true == 2 and result.pooled["spasm"].true == 2
    assert result.hours == pytest.approx(2 * 240 / 3600, abs=1e-3)
    _check_pooled(result.as_dict())
    assert "rms: 2 recording(s)" in result.table()


def test_edf_annotations_are_the_truth_without_a_csv(nights: dict[int, Recording], tmp_path: Path) -> None:
    write_edf(nights[6], tmp_path / "night.edf")
    result = evaluate(file_cases([tmp_path / "night.edf"]), make_detector("rms")[0], progress=False)
    (row,) = result.recordings
    assert row.truth == "annotations"
    assert (row.scores["cramp"].true, row.scores["spasm"].true) == (1, 1)


def test_recording_without_truth_is_a_clear_error(
    nights: dict[int, Recording], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bare.edf"
    write_edf(_without_annotations(nights[5]), path)
    with pytest.raises(MissingTruthError, match=r"bare\.truth\.csv") as info:
        evaluate(file_cases([path]), make_detector("rms")[0], progress=False)
    assert info.value.path == str(path)
    assert main(["evaluate", str(path), "--detector", "rms", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "--truth" in err and "--no-events" in err and "type,onset_s,offset_s" in err


def test_events_csvs_are_scored_instead_of_a_detector(
    nights: dict[int, Recording], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = nights[5]
    write_edf(rec, tmp_path / "night.edf")
    truth = [*rec.annotations, Annotation("plm", 150.0, 152.0)]
    write_annotations(tmp_path / "night.truth.csv", truth)
    detected = tmp_path / "detected"
    detected.mkdir()
    perfect = [(a.type, a.onset_s + 0.5, a.offset_s) for a in truth if a.type in (*SCORED, "plm")]
    _write_events(detected / "night.events.csv", [*perfect, ("spasm", 10.0, 11.0)])
    out = tmp_path / "scores.json"
    argv = ["evaluate", str(tmp_path), "--events", str(detected), "--json", str(out), "--no-progress"]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["detector"]["name"] == "events"
    assert report["types"] == ["cramp", "spasm", "plm"]  # plm: in both the truth and the events
    scores = report["pooled"]["scores"]
    assert (scores["cramp"]["f1"], scores["plm"]["f1"]) == (1.0, 1.0)
    assert (scores["spasm"]["matched"], scores["spasm"]["predicted"]) == (1, 2)
    assert scores["spasm"]["median_onset_error_s"] == 0.5
    assert report["pooled"]["x_real_time"] is None and report["recordings"][0]["detect_s"] is None
    assert "night.edf" in capsys.readouterr().out
    _check_pooled(report)


def test_evaluate_prints_spasm_subtype_accuracy_and_confusion(
    nights: dict[int, Recording], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_edf(_without_annotations(nights[5]), tmp_path / "night.edf")
    truth = [Annotation("spasm", 20.0, 25.0, "clonus"), Annotation("spasm", 60.0, 61.5, "flexor")]
    write_annotations(tmp_path / "night.truth.csv", truth)
    with open(tmp_path / "night.events.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        writer.writerow(["spasm", 20.0, 25.0, 1.0, 100.0, "clonus", 0.0, "p", "d"])
        writer.writerow(["spasm", 60.0, 61.5, 1.0, 100.0, "extensor", 0.0, "p", "d"])
    out = tmp_path / "scores.json"
    argv = ["evaluate", str(tmp_path / "night.edf"), "--events", str(tmp_path / "night.events.csv")]
    assert main([*argv, "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "spasm subtype accuracy 0.50 (1 of 2 matched spasms)" in printed
    rows = {
        line.split()[0]: line.split()[1:] for line in printed.splitlines() if line.startswith(("clonus ", "flexor "))
    }
    assert rows == {"clonus": ["0", "1", "0", "0", "0"], "flexor": ["0", "0", "0", "1", "0"]}
    subtypes = json.loads(out.read_text())["pooled"]["subtypes"]
    assert (subtypes["matched"], subtypes["correct"], subtypes["accuracy"]) == (2, 1, 0.5)
    assert {"true": "flexor", "given": "extensor", "count": 1} in subtypes["confusion"]


def test_no_events_counts_every_detection_as_a_false_alarm(nights: dict[int, Recording], tmp_path: Path) -> None:
    write_edf(_without_annotations(nights[6]), tmp_path / "rest.edf")
    _write_events(tmp_path / "rest.events.csv", [("spasm", 10.0, 12.0), ("cramp", 60.0, 120.0)])
    cases = file_cases([tmp_path / "rest.edf"], events=tmp_path / "rest.events.csv", no_events=True)
    result = evaluate(cases, None, progress=False)
    spasm, cramp = result.pooled["spasm"], result.pooled["cramp"]
    assert (spasm.true, spasm.predicted, cramp.predicted) == (0, 1, 1)
    assert spasm.false_alarms_per_hour == pytest.approx(3600 / 240, rel=1e-3)
    assert result.as_dict()["pooled"]["scores"]["spasm"]["median_onset_error_s"] is None  # NaN -> null


def test_simulated_cannot_be_mixed_with_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    night = tmp_path / "night.edf"
    night.touch()  # it must exist: a missing file is reported first, while the arguments are parsed
    assert main(["evaluate", "--simulated", "2", str(night)]) == 2
    assert "--simulated" in capsys.readouterr().err


def test_recordings_with_and_without_accelerometer_are_also_pooled_apart(
    nights: dict[int, Recording], tmp_path: Path
) -> None:
    write_edf(nights[5], tmp_path / "a.edf")
    write_edf(Recording(emg=nights[6].emg, annotations=nights[6].annotations, source="b"), tmp_path / "b.edf")
    result = evaluate(file_cases([tmp_path]), make_detector("rms")[0], progress=False)
    assert [r.accelerometer for r in result.recordings] == [True, False]
    split = result.by_accelerometer
    assert list(split) == ["with accelerometer", "without accelerometer"]
    for kind in SCORED:
        assert split["with accelerometer"][kind].true == result.recordings[0].scores[kind].true
        assert split["without accelerometer"][kind].predicted == result.recordings[1].scores[kind].predicted
    assert "without accelerometer: 1 recording(s)" in result.table()
    assert set(result.as_dict()["pooled"]["by_accelerometer"]) == set(split)
    one = evaluate(file_cases([tmp_path / "a.edf"]), make_detector("rms")[0], progress=False)
    assert one.by_accelerometer == {} and "accelerometer:" not in one.table()


def test_an_unreadable_recording_is_listed_and_the_others_are_scored(
    nights: dict[int, Recording], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `batch` does: a bad file does not stop the folder; it is listed with its error and the exit code is 1."""
    write_edf(nights[5], tmp_path / "a.edf")
    (tmp_path / "b.edf").write_bytes(b"not an EDF file at all")
    write_edf(nights[6], tmp_path / "c.edf")
    out = tmp_path / "scores.json"
    argv = ["evaluate", str(tmp_path), "--detector", "rms", "--json", str(out), "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "a.edf" in captured.out and "c.edf" in captured.out and "1 failed" in captured.out
    (line,) = [x for x in captured.err.splitlines() if x.startswith("FAILED")]
    assert "b.edf" in line and "Error" in line  # the error's type and message, as batch writes it
    report = json.loads(out.read_text())
    assert [Path(r["name"]).name for r in report["recordings"]] == ["a.edf", "c.edf"]
    (failed,) = report["failed"]
    assert Path(failed["name"]).name == "b.edf" and failed["error"] == line.split(": ", 1)[1]
    _check_pooled(report)
