"""The scenario suite (crampwatch.scenarios) and its check (detector.scenario_check).

These test the suite, not the detector: truth is consistent with events.md, signal levels sit in the
physiology.md ranges, the generator is deterministic and independent of the training simulator, and the
check runs end to end. No test asserts that the shipped model passes a scenario.

The scenarios need the real recordings (shared/data/real, or $CRAMP_REAL_DATA); without them those tests
skip.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from crampwatch.recording import Recording
from crampwatch.scenarios import (
    CONTEXT_TYPES,
    ENV_VAR,
    EVENT_TYPES,
    SCENARIOS,
    SPASM_SUBTYPES,
    RealDataMissingError,
    Scenario,
    band_floor,
    build,
    find_real_data,
)

NAMES = [s.name for s in SCENARIOS]


def _real() -> Path:
    try:
        return find_real_data()
    except RealDataMissingError as err:
        pytest.skip(f"real recordings not available: {err}")


@cache
def _built(name: str, seed: int = 0) -> Recording:
    return build(next(s for s in SCENARIOS if s.name == name), seed)


def _rec(name: str, seed: int = 0) -> Recording:
    _real()
    return _built(name, seed)


def _scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


# ------------------------------------------------------------------------------------------ the registry


def test_registry_is_15_to_25_named_scenarios_under_90_minutes() -> None:
    assert 15 <= len(SCENARIOS) <= 25
    assert len(set(NAMES)) == len(NAMES)
    for s in SCENARIOS:
        assert s.description and "\n" not in s.description and len(s.description) <= 120, s.name
        assert 60 <= s.duration_s <= 600, s.name
        assert 500 <= s.emg_rate_hz <= 2000, s.name
        assert 0.5 <= s.gain <= 3.0, s.name
        assert s.mains_hz in (50.0, 60.0), s.name
    assert sum(s.duration_s for s in SCENARIOS) <= 90 * 60


def test_the_suite_does_not_import_the_training_simulator() -> None:
    code = "import sys, crampwatch.scenarios; print('crampwatch.simulate' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    package = Path(__file__).resolve().parents[2] / "crampwatch" / "scenarios"
    for path in package.glob("*.py"):  # not even lazily, inside a function
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "simulate" not in (node.module or ""), f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Import):
                assert all("simulate" not in a.name for a in node.names), f"{path.name}:{node.lineno}"


def test_missing_real_data_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(RealDataMissingError, match=ENV_VAR):
        find_real_data()


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_same_recording_and_another_seed_differs() -> None:
    _real()
    name = "clonus-run-20s"
    a = _built(name)
    b = build(_scenario(name), 0)  # not the cached object
    assert np.array_equal(a.emg.data, b.emg.data)
    assert a.acc is not None and b.acc is not None
    assert np.array_equal(a.acc.data, b.acc.data)
    assert a.annotations == b.annotations
    c = build(_scenario(name), 1)
    assert not np.array_equal(a.emg.data, c.emg.data)


# ------------------------------------------------------------------------------------------ truth


@pytest.mark.parametrize("name", NAMES)
def test_truth_is_consistent_with_the_event_definitions(name: str) -> None:
    rec = _rec(name)
    assert rec.emg.rate_hz == _scenario(name).emg_rate_hz
    assert rec.emg.channel_names == ("calf", "tibialis")
    assert rec.acc is not None and rec.acc.rate_hz == 50.0 and rec.acc.data.shape[1] == 3
    assert abs(rec.duration_s - _scenario(name).duration_s) < 0.01
    for a in rec.annotations:
        assert 0.0 <= a.onset_s < a.offset_s <= rec.duration_s, a
        assert a.type in EVENT_TYPES + CONTEXT_TYPES, a
        if a.type == "spasm":
            assert a.subtype in SPASM_SUBTYPES, a
        if a.type == "cramp":
            assert a.subtype == "" and 10.0 <= a.duration_s <= 600.0, a  # cramps 10 s-10 min (issue 14)
        if a.type == "plm":
            assert 0.5 <= a.duration_s <= 10.0, a  # AASM LM duration (physiology.md §5)
    scored = [a for a in rec.annotations if a.type in ("cramp", "spasm")]
    for x, y in itertools.pairwise(scored):
        assert x.offset_s <= y.onset_s, f"{x} overlaps {y}"  # one event per episode (events.md)
    for precursor in (a for a in rec.annotations if a.type == "precursor"):
        assert any(abs(c.onset_s - precursor.offset_s) < 1e-9 for c in rec.annotations if c.type == "cramp")
        assert 20.0 <= precursor.duration_s <= 60.0  # precursor 20-60 s (physiology.md §1)


def test_plm_series_follow_aasm_intervals() -> None:
    for name in ("flexor-spasm-then-plm", "plm-series-gain-2"):
        onsets = np.array([a.onset_s for a in _rec(name).annotations if a.type == "plm"])
        assert len(onsets) >= 4  # a series is >= 4 movements (physiology.md §5)
        assert np.all((np.diff(onsets) >= 5.0) & (np.diff(onsets) <= 90.0))  # onset-to-onset 5-90 s


# ------------------------------------------------------------------------------------------ levels


def _window_rms(x: np.ndarray, rate: float) -> np.ndarray:
    sos = signal.butter(4, [20.0, min(450.0, 0.45 * rate)], btype="band", fs=rate, output="sos")
    y = signal.sosfiltfilt(sos, x)
    w = round(0.25 * rate)
    n = len(y) // w
    return np.asarray(np.sqrt(np.mean(y[: n * w].reshape(n, w) ** 2, axis=1)))


def _quiet_mask(rec: Recording, n_windows: int) -> np.ndarray:
    """Windows (250 ms) at least 3 s from every annotation."""
    t = (np.arange(n_windows) + 0.5) * 0.25
    quiet = np.ones(n_windows, dtype=bool)
    for a in rec.annotations:
        quiet &= (t < a.onset_s - 3.0) | (t > a.offset_s + 3.0)
    return quiet


@pytest.mark.parametrize("name", NAMES)
def test_rest_floor_is_a_few_microvolts_times_gain(name: str) -> None:
    rec = _rec(name)
    gain = _scenario(name).gain
    for ch in range(2):
        rms = _window_rms(rec.emg.data[:, ch], rec.emg.rate_hz)
        quiet = _quiet_mask(rec, len(rms))
        assert quiet.sum() >= 20, "scenario has under 5 s of rest to measure"
        floor = float(np.median(rms[quiet])) / gain
        # rest 1-5 µV, noisy nights up to 30 (physiology.md §1); mains adds a little at 50/60 Hz
        assert 0.5 <= floor <= 8.0, f"{name} ch{ch}: rest floor {floor:.2f} µV before gain"


@pytest.mark.parametrize("name", [n for n in NAMES if "cramp" in n])
def test_cramps_stand_at_least_3x_above_the_floor(name: str) -> None:
    rec = _rec(name)
    calf = rec.emg.data[:, 0]
    rms = _window_rms(calf, rec.emg.rate_hz)
    floor = band_floor(calf[: round(20 * rec.emg.rate_hz)], rec.emg.rate_hz)  # every scenario rests 20 s first
    t = (np.arange(len(rms)) + 0.5) * 0.25
    for c in (a for a in rec.annotations if a.type == "cramp"):
        body = (t > c.onset_s + 3.0) & (t < c.offset_s - 10.0)  # past the rise, before a fade
        assert np.median(rms[body]) >= 3.0 * floor, f"{name} cramp at {c.onset_s:.0f} s"
        assert np.median(rms[body]) <= 3000.0  # 50-1000 µV x gain <= 3 (physiology.md §1 (g))


def test_sitting_up_during_a_cramp_tilts_the_shank_45_to_90_degrees() -> None:
    rec = _rec("five-minute-cramp-sits-up-rubs")
    assert rec.acc is not None
    acc, rate = rec.acc.data, rec.acc.rate_hz
    lying = acc[: round(50 * rate)].mean(axis=0)  # before anything happens
    wake = next(a for a in rec.annotations if a.type == "wake")
    sat = acc[round((wake.onset_s + 10) * rate) : round((wake.onset_s + 40) * rate)].mean(axis=0)
    cos = lying @ sat / (np.linalg.norm(lying) * np.linalg.norm(sat))
    assert 40.0 <= np.degrees(np.arccos(cos)) <= 95.0
    norm = np.linalg.norm(acc[: round(50 * rate)], axis=1)
    assert abs(np.median(norm) - 1.0) < 0.02 and np.std(norm) < 0.005  # g at rest, 1-2 mg noise (§1)


# ------------------------------------------------------------------------------------------ the check


def test_the_check_runs_scenarios_through_the_shipped_model() -> None:
    _real()
    from detector.model import load_model
    from detector.scenario_check import format_table, run_scenarios, summarize

    names = ["short-cramp-fading", "clonus-run-20s", "quiet-rest-noisy"]
    results = run_scenarios(load_model(), names=names)
    assert [r.name for r in results] == names
    for r in results:
        assert r.passed == (not r.reasons)
        assert {a.type for a in r.expected} <= set(EVENT_TYPES)
        assert len(r.cramps) == sum(a.type == "cramp" for a in r.expected)
        assert len(r.spasm_hits) == sum(a.type == "spasm" for a in r.expected)
    totals = summarize(results)
    assert totals.scenarios == 3 and 0 <= totals.passed <= 3
    assert totals.cramps_true == 1 and 0 <= totals.cramps_one_event <= 1
    table = format_table(results)
    for name in names:
        assert name in table
    assert "passed" in table and "cramp  P" in table and "spasm subtype" in table


def test_unknown_scenario_names_are_refused() -> None:
    from detector.scenario_check import run_scenarios

    with pytest.raises(KeyError, match="no-such-scenario"):
        run_scenarios(None, names=["no-such-scenario"])  # type: ignore[arg-type]


# ------------------------------------------------------------------ cramp-detector evaluate --scenarios


def test_evaluate_scenarios_prints_the_table_for_the_named_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from detector.cli import main

    _real()
    rc = main(["evaluate", "--scenarios", "quiet-rest-noisy", "clonus-run-20s"])
    out = capsys.readouterr().out
    assert "quiet-rest-noisy" in out and "clonus-run-20s" in out and "of 2 scenarios" in out
    assert rc == (0 if "passed 2 of 2" in out else 1)  # the exit code follows the table


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["evaluate", "--scenarios", "no-such-scenario"], "unknown scenario(s) no-such-scenario"),
        (["evaluate", "--scenarios", "--simulated", "2"], "cannot be combined with --simulated"),
        (["evaluate", "--scenarios", "--detector", "rms"], "scores the model only"),
    ],
)
def test_evaluate_scenarios_bad_use_is_one_line(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from detector.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
