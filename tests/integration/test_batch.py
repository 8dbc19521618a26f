"""``cramp-detector batch`` on a small cohort (three short nights and a corrupt file) on a local Dask
cluster of real worker processes: per-file events equal ``detect_recording``, one failure is reported
and does not stop the others."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from crampwatch.formats import read_recording
from crampwatch.formats.edf import write_edf
from crampwatch.simulate import Night
from detector.batch import SUMMARY_FIELDS, find_recordings
from detector.cli import main as detector_main
from detector.events import CSV_FIELDS
from detector.model import load_model
from detector.offline import detect_recording

pytestmark = pytest.mark.integration

#: Three nights of 2-3 minutes (seeds whose minutes hold events), one in a sub-folder.
NIGHTS = {"p01/night.edf": (2, 120.0), "p02/night.edf": (13, 150.0), "p03.bdf": (6, 120.0)}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    for name, (seed, seconds) in NIGHTS.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        write_edf(Night(seconds, seed, event_density=3).recording(), path)
    good = (root / "p03.bdf").read_bytes()
    (root / "p04-corrupt.edf").write_bytes(good[:256] + b"garbage" * 10)  # not even an EDF header
    (root / "notes.txt.bak").write_text("not a recording")
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cohort_on_a_local_dask_cluster(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [p.relative_to(cohort).as_posix() for p in find_recordings(cohort)] == [
        "p01/night.edf",
        "p02/night.edf",
        "p03.bdf",
        "p04-corrupt.edf",
    ]
    out = tmp_path / "results"
    code = detector_main(["batch", str(cohort), "--out", str(out), "--workers", "2", "--no-progress"])
    printed = capsys.readouterr()
    assert code == 1  # one file failed
    summary = _rows(out / "summary.csv")
    assert [r["file"] for r in summary] == ["p01__night.edf", "p02__night.edf", "p03.bdf", "p04-corrupt.edf"]
    assert list(summary[0]) == list(SUMMARY_FIELDS)
    failed = summary[3]
    assert failed["error"].startswith("RecordingError: ") and "p04-corrupt.edf" in failed["error"]
    assert "FAILED p04-corrupt.edf: RecordingError" in printed.err
    assert "p04-corrupt.edf" in printed.out and "cramp_minutes" in printed.out  # the table is printed

    model = load_model()
    with threadpool_limits(1):  # the workers run with one OpenMP thread (Dask's default); so do we here
        expected_events = {name: detect_recording(read_recording(cohort / name), model) for name in NIGHTS}
    for name, row in zip(NIGHTS, summary[:3], strict=True):
        expected = expected_events[name]
        events = _rows(out / "events" / f"{row['file']}.events.csv")
        if events:
            assert list(events[0]) == list(CSV_FIELDS)
        assert [list(e.values()) for e in events] == [
            replace(ev, patient="cohort", device=row["file"]).csv_row() for ev in expected
        ]
        cramps = [e for e in expected if e.type == "cramp"]
        assert row["cramps"] == str(len(cramps))
        assert row["spasms"] == str(sum(e.type == "spasm" for e in expected))
        # The summary prints one decimal, so it may be 0.05 off (plus float rounding).
        assert float(row["cramp_minutes"]) == pytest.approx(sum(e.duration_s for e in cramps) / 60, abs=0.0501)
        assert float(row["hours"]) == pytest.approx(NIGHTS[name][1] / 3600, abs=0.005)
        plm_per_h = sum(e.type == "plm" for e in expected) / (NIGHTS[name][1] / 3600)
        assert float(row["plm_index"]) == pytest.approx(plm_per_h, abs=0.0501)
        assert float(row["coverage_pct"]) > 95.0
        assert row["error"] == ""
    assert sum(int(r["cramps"]) + int(r["spasms"]) for r in summary[:3]) >= 3


def test_an_empty_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert detector_main(["batch", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no recordings under" in capsys.readouterr().err
