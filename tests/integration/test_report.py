"""The night report: from InfluxDB (the live-path night) and offline, rendered by headless Chromium.

Chromium and pdftoppm are real programs here (tests/run.sh installs Debian's chromium and poppler-utils).
The screenshot is checked by colour: the timeline's cramp red and the event table's header blue must be
on the first screen, the timeline above the table.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crampwatch.formats.edf import write_edf
from crampwatch.simulate import Night
from detector.cli import main
from detector.report import COLORS, find_chromium, screenshot
from tests.integration.conftest import PATIENT, LiveNight

pytestmark = pytest.mark.integration

TABLE_BLUE = (0x1F, 0x4E, 0x79)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _rows_with(image: Path, rgb: tuple[int, int, int]) -> np.ndarray:
    """Row indices of pixels of exactly this colour."""
    pixels = np.asarray(Image.open(image).convert("RGB")).astype(int)
    hit: np.ndarray = (np.abs(pixels - np.array(rgb)).sum(axis=2) <= 6).nonzero()[0]
    return hit


def _chromium() -> str:
    browser = find_chromium()
    assert browser, "chromium is not installed: run bash tests/run.sh (apt-get install chromium)"
    return browser


@pytest.fixture(scope="module")
def live_report(live_night: LiveNight, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "night.html"
    db = live_night.db
    argv = ["report", "--patient", PATIENT, "--night", live_night.night, "--out", str(out)]
    argv += ["--influx-url", db.influx_url, "--influx-bucket", db.name]
    assert main(argv) == 0
    return out


def test_report_from_influxdb_has_every_part(live_report: Path, live_night: LiveNight) -> None:
    text = live_report.read_text()
    for part in ("The night at a glance", "Events", "Each cramp up close", "Data quality", "PLM index", "SHA-256"):
        assert part in text, part
    cramps = [e for e in live_night.events if e.type == "cramp"]
    assert text.count("<b>Cramp ") == len(cramps) >= 1, "one zoom per cramp"
    assert "<script" not in text and "http://" not in text.split("Source:")[0], "self-contained"
    assert "duration_s" not in text and "data_received" not in text, "plain words, no field names"


def test_report_screenshot_shows_the_timeline_and_the_table(live_report: Path, tmp_path: Path) -> None:
    png = tmp_path / "shot.png"
    screenshot(live_report, png, browser=_chromium(), width=1100, height=1700)
    red = _rows_with(png, _rgb(COLORS["cramp"]))
    blue = _rows_with(png, TABLE_BLUE)
    assert red.size > 200, "no cramp drawn on the timeline"
    assert blue.size > 2000, "no event table header on the first screen"
    assert np.median(red) < blue.min(), "the timeline comes before the table"


def test_report_pdf_converts_to_png_pages(live_report: Path, tmp_path: Path) -> None:
    pdf = live_report.with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm is not installed: run bash tests/run.sh (apt-get install poppler-utils)"
    subprocess.run([pdftoppm, "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert 1 <= len(pages) <= 6
    first = np.asarray(Image.open(pages[0]).convert("L"))
    assert (first < 128).mean() > 0.01, "the first page is blank"
    assert _rows_with(pages[0], _rgb(COLORS["cramp"])).size > 0 or len(pages) > 1


def test_offline_report_from_detect_output(tmp_path: Path) -> None:
    night = Night(180.0, 3, event_density=3)
    edf = tmp_path / "night.edf"
    rec = night.recording()
    write_edf(replace(rec, meta={**rec.meta, "start": datetime(2026, 1, 1, 22, 30, tzinfo=UTC)}), edf)
    events = tmp_path / "events.csv"
    assert main(["detect", str(edf), "--out", str(events)]) == 0
    out = tmp_path / "offline.html"
    argv = ["report", "--events", str(events), "--recording", str(edf), "--out", str(out), "--patient", "p7"]
    assert main([*argv, "--timezone", "Europe/Berlin"]) == 0
    text = out.read_text()
    assert "patient p7, night of 2026-01-01" in text and "Events" in text
    assert "23:30" in text, "clock times in the chosen time zone (22:30 UTC is 23:30 in Berlin)"
    assert out.with_suffix(".pdf").is_file()


def test_without_chromium_the_html_is_still_written(
    live_night: LiveNight, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on this PATH
    out = tmp_path / "r.html"
    db = live_night.db
    argv = ["report", "--patient", PATIENT, "--night", live_night.night, "--out", str(out)]
    assert main([*argv, "--influx-url", db.influx_url, "--influx-bucket", db.name]) == 0
    assert out.is_file() and not out.with_suffix(".pdf").exists()
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if "chromium is not installed" in ln]) == 1, err


def test_unknown_patient_is_a_clear_error(live_night: LiveNight, capsys: pytest.CaptureFixture[str]) -> None:
    db = live_night.db
    argv = ["report", "--patient", "nobody", "--night", live_night.night, "--no-pdf"]
    assert main([*argv, "--influx-url", db.influx_url, "--influx-bucket", db.name]) == 2
    assert "no data for patient 'nobody'" in capsys.readouterr().err
