"""Peer detectors (RMS threshold, NeuroKit2 defaults): bursts found, noise quiet, any sample rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crampwatch.errors import ConfigError
from crampwatch.frames import StreamKind
from crampwatch.recording import Recording, Signal
from detector.events import Event
from detector.peers import PEERS, DurationRules, get_peer
from detector.peers._rules import events_from_activity
from detector.peers.neurokit import activation

CRAMP = (30.0, 70.0)  # a 40 s sustained discharge
SPASM = (90.0, 93.0)  # a 3 s burst


def _recording(fs: float, *, bursts: bool, seconds: float = 120.0, seed: int = 0) -> Recording:
    """Two channels of 3 µV white noise; with ``bursts``, a 200 µV cramp and spasm on the first."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 3.0, (round(seconds * fs), 2))
    if bursts:
        for a, b in (CRAMP, SPASM):
            i, j = round(a * fs), round(b * fs)
            data[i:j, 0] += rng.normal(0.0, 200.0, j - i)
    return Recording(emg=Signal(StreamKind.EMG, fs, ("calf", "tibialis"), data))


@pytest.mark.parametrize("fs", [200.0, 2000.0])
@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_finds_a_big_burst_as_cramp_and_a_short_one_as_spasm(name: str, fs: float) -> None:
    events = get_peer(name)(_recording(fs, bursts=True))
    assert [e.type for e in events] == ["cramp", "spasm"]
    for event, (onset, offset) in zip(events, (CRAMP, SPASM), strict=True):
        assert isinstance(event, Event)
        assert abs(event.onset_s - onset) < 0.5 and abs(event.offset_s - offset) < 0.5
        assert event.peak_uv > 100


@pytest.mark.parametrize("fs", [200.0, 2000.0])
@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_finds_nothing_in_noise(name: str, fs: float) -> None:
    assert get_peer(name)(_recording(fs, bursts=False)) == []


def test_unknown_peer_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="rms"):
        get_peer("magic")


def test_duration_rules_merge_drop_and_label() -> None:
    rate = 10.0  # steps per second
    active = np.zeros(1000, dtype=bool)
    active[100:300] = True  # 20 s ...
    active[315:420] = True  # ... a 1.5 s gap, then 10.5 s more: one 32 s cramp
    active[500:503] = True  # 0.3 s: dropped
    active[600:640] = True  # 4 s spasm
    active[660:670] = True  # 2 s after it: not merged, a 1 s spasm
    events = events_from_activity(active, rate, np.arange(1000.0), DurationRules(), t0_s=5.0)
    assert [(e.type, e.onset_s, e.offset_s) for e in events] == [
        ("cramp", 15.0, 47.0),
        ("spasm", 65.0, 69.0),
        ("spasm", 71.0, 72.0),
    ]
    assert events[0].peak_uv == 419.0


def test_neurokit_activation_matches_emg_activation() -> None:
    """The recomposed activation gives the onsets and offsets of ``nk.emg_activation`` itself."""
    import neurokit2 as nk  # type: ignore[import-untyped]  # a test dependency: missing fails loudly

    fs = 1000.0
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 3.0, 5000)
    for a, b in ((600, 1500), (2500, 2800), (3500, 4600)):
        x[a:b] += rng.normal(0.0, 80.0, b - a)
    amplitude = nk.emg_amplitude(nk.emg_clean(x, sampling_rate=fs))
    _, info = nk.emg_activation(emg_amplitude=amplitude, sampling_rate=fs)
    onsets, offsets = activation(np.asarray(amplitude), fs)
    assert len(onsets) >= 3
    np.testing.assert_array_equal(onsets, info["EMG_Onsets"])
    np.testing.assert_array_equal(offsets, info["EMG_Offsets"])


def test_peers_benchmark_scores_the_scenario_suite(tmp_path: Path) -> None:
    """`python -m benchmarks.peers` also scores the independent scenario suite, quiet scenarios included."""
    from benchmarks import peers as bench
    from crampwatch.scenarios import SCENARIOS, RealDataMissingError, find_real_data

    try:
        find_real_data()
    except RealDataMissingError as err:
        pytest.skip(f"real recordings not available: {err}")
    cases = bench.scenario_cases()
    assert [c.name for c in cases] == [f"scenario {s.name}" for s in SCENARIOS]
    out, scores = tmp_path / "peers.md", tmp_path / "peers.json"
    argv = ["--nights", "1", "--night-s", "60", "--detectors", "rms", "--no-real", "--no-progress"]
    assert bench.main([*argv, "--out", str(out), "--json", str(scores)]) == 0
    report = out.read_text()
    assert "### Scenario suite (independent of the training code)" in report
    assert "Which numbers are independent of the training code" in report
    assert len(json.loads(scores.read_text())["scenarios"]["rms"]["recordings"]) == len(SCENARIOS)
