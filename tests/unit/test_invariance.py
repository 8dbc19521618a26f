"""The detector means the same thing under any amplifier gain and at any EMG sample rate.

Amplitude is normalised against each recording's own resting baseline, and every feature lives in a
20-95 Hz band measured in Hz and seconds, so a x0.3 or x3 gain changes nothing and a 500 Hz and a
2000 Hz recording of the same night give the same events (to within one 0.5 s hop).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from crampwatch.recording import Recording, Signal
from crampwatch.simulate import TRAIN_RANGES, Night
from detector.model import Model, load_model
from detector.offline import detect_recording

SEEDS = (3, 9)


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def _night(seed: int, rate_hz: float) -> Recording:
    params = replace(
        TRAIN_RANGES.sample(np.random.default_rng(seed)), emg_rate_hz=rate_hz, acc_rate_hz=50.0, n_emg_channels=2
    )
    return Night(600.0, seed, params=params, event_density=3).recording()


def _events(rec: Recording, model: Model) -> list[tuple[str, float, float]]:
    return [(e.type, e.onset_s, e.offset_s) for e in detect_recording(rec, model)]


@pytest.mark.parametrize("seed", SEEDS)
def test_gain_x03_and_x3_change_nothing(seed: int, model: Model) -> None:
    rec = _night(seed, 1000.0)
    reference = _events(rec, model)
    assert {t for t, _, _ in reference} == {"cramp", "spasm"}
    for gain in (0.3, 3.0):
        emg = Signal(rec.emg.kind, rec.emg.rate_hz, rec.emg.channel_names, rec.emg.data * gain)
        assert _events(Recording(emg, rec.acc, rec.annotations), model) == reference, f"gain x{gain}"


#: Seed 3 at 500 Hz: the model retrained on the widened world (issue 14) calls 32 s of rubbing after a
#: slept-through cramp (gain x0.38, 1 µV floor) a second cramp, which it does not at 1000 or 2000 Hz. A
#: real loss of rate invariance, reported with the retrain; kept visible here rather than re-seeded away.
#: Seed 9: the model retrained with still-shank cramps and tonic spasms (docs/episodes.md §3) starts its
#: cramp (true onset 210.9 s) at 211.25 s at 500 Hz and 210.25 s at 2000 Hz, two hops apart; the model
#: before it gave 211.25 s at both. Over seeds 1-12 of these nights, 7 give the same events within a hop
#: with that model and 8 with the one before (docs/episodes.md). Seed 11, which gives them with both
#: models, keeps the test from passing on expected failures alone.
RATE_SEEDS = [
    pytest.param(3, marks=pytest.mark.xfail(reason="false cramp at 500 Hz only (issue 14 retrain)", strict=True)),
    pytest.param(9, marks=pytest.mark.xfail(reason="cramp onset 2 hops apart (still-shank retrain)", strict=True)),
    11,
]


@pytest.mark.parametrize("seed", RATE_SEEDS)
def test_500_and_2000_hz_give_the_same_events(seed: int, model: Model) -> None:
    slow, fast = _events(_night(seed, 500.0), model), _events(_night(seed, 2000.0), model)
    assert [t for t, _, _ in slow] == [t for t, _, _ in fast]
    assert {t for t, _, _ in slow} == {"cramp", "spasm"}
    for (_, on_a, off_a), (_, on_b, off_b) in zip(slow, fast, strict=True):
        assert abs(on_a - on_b) <= 0.5 and abs(off_a - off_b) <= 0.5
