"""The training world is as wide as real nights (issue 14): cramps the sleeper wakes, sits up and rubs
through, relief dips, both offset styles, weak off-site cramps, every spasm subtype; and its ranges contain
every test's (held-out simulator nights, the scenario suite), so the model is never scored outside them."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from crampwatch.scenarios import SCENARIOS
from crampwatch.scenarios import _parts as scenario_parts
from crampwatch.simulate import HELDOUT_RANGES, TRAIN_RANGES, Night, SimParams
from crampwatch.simulate._events import Cramp, Wake
from crampwatch.simulate._params import EventRanges
from detector.train.data import window_labels

#: Every cramp 4-6 min long, always waking and rubbing during it, always dipping; no other scored event.
LONG_CRAMP = SimParams(
    mains_uv=0.0,
    ecg_uv=0.0,
    cramp_per_h=0.0,  # a dense night still plants one
    plm_series_per_h=0.0,
    events=replace(
        TRAIN_RANGES.events,
        cramp_dur_s=(240.0, 360.0),
        wake_in_cramp_prob=1.0,
        wake_delay_s=(5.0, 20.0),
        dip_prob=1.0,
        lm_per_h=0.0,
    ),
)


def test_long_cramp_with_wake_rub_and_dips_is_one_cramp() -> None:
    night = Night(900.0, 5, LONG_CRAMP, event_density=3.0)
    (cramp,) = (e for e in night.events if isinstance(e, Cramp))
    (wake,) = (e for e in night.events if isinstance(e, Wake))
    (truth,) = (a for a in night.annotations if a.type == "cramp")
    assert (truth.onset_s, truth.offset_s) == (cramp.on, cramp.off)
    # the sleeper wakes, sits up (or bends the knee) and rubs while the discharge goes on
    assert cramp.on < wake.t0 < cramp.off < wake.t1
    inside = [b for b in wake.bouts if b[0] < cramp.off]
    assert inside, "no rubbing during the cramp"
    assert cramp.dips >= 1
    # the dip really drops the discharge, and comes back before the offset
    low = cramp.ka[(cramp.kt > cramp.on + 2.0) & (cramp.kt < cramp.off - 10.0)]
    assert low.min() < 0.75 * low.max()
    # the rubbing is in the signals: electrode-motion artefact (< 20 Hz) on the calf and ACC motion
    s0, s1 = inside[0][0], min(inside[0][1], cramp.off)
    _, acc = night.render(s0, s1)
    wake_emg = wake.emg(night.params.emg_rate_hz, night.params)
    assert np.ptp(wake_emg[:, 0]) > 0
    assert float(np.std(np.linalg.norm(acc, axis=1))) > 0.005
    # every window inside the cramp, dips and rubbing included, is labelled cramp
    ends = np.arange(cramp.on + 1.5, cramp.off, 0.5)
    labels = window_labels(ends, night.annotations)
    assert set(labels.tolist()) == {"cramp"}


@pytest.mark.parametrize("seed", range(6))
def test_training_nights_keep_one_annotation_per_cramp(seed: int) -> None:
    night = Night(1200.0, 300 + seed, replace(TRAIN_RANGES.sample(np.random.default_rng(seed)), cramp_per_h=6.0))
    cramps = [e for e in night.events if isinstance(e, Cramp)]
    truth = [a for a in night.annotations if a.type == "cramp"]
    assert len(cramps) == len(truth) >= 1
    for c, a in zip(sorted(cramps, key=lambda e: e.on), truth, strict=True):
        assert (a.onset_s, a.offset_s) == (c.on, c.off)


def _covers(wide: tuple[float, float], narrow: tuple[float, float]) -> bool:
    return wide[0] <= narrow[0] and narrow[1] <= wide[1]


def test_training_event_ranges_contain_the_heldout_ones() -> None:
    train, held = TRAIN_RANGES.events, HELDOUT_RANGES.events
    assert held == EventRanges()  # the held-out nights use the physiological ranges
    for f in fields(EventRanges):
        a, b = getattr(train, f.name), getattr(held, f.name)
        if isinstance(a, tuple):
            assert _covers(a, b), f.name
    # the new phenomena are there at all in training
    assert train.wake_in_cramp_prob > 0.5 and train.dip_prob > 0 and train.fade_prob > 0
    assert train.offsite_prob > 0 and train.offsite_x_floor[0] <= 3.0
    assert train.residual_prob > 0 and train.lm_per_h > 0
    assert TRAIN_RANGES.real_floor_prob > 0 and TRAIN_RANGES.real_voluntary_per_h > 0


def test_training_ranges_contain_every_scenario() -> None:
    ev = TRAIN_RANGES.events
    rates = [s.emg_rate_hz for s in SCENARIOS]
    assert min(TRAIN_RANGES.emg_rates_hz) <= min(rates) and max(rates) <= max(TRAIN_RANGES.emg_rates_hz)
    gain_lo = min(lo for lo, _ in TRAIN_RANGES.gain_bands)
    gain_hi = max(hi for _, hi in TRAIN_RANGES.gain_bands)
    assert all(gain_lo <= s.gain <= gain_hi for s in SCENARIOS)
    assert all(s.mains_hz in TRAIN_RANGES.mains_freqs_hz and s.mains_uv <= TRAIN_RANGES.mains_uv[1] for s in SCENARIOS)
    parts = [(p, s.gain) for s in SCENARIOS for p in s.parts]
    for p, gain in parts:
        if isinstance(p, scenario_parts.Cramp):
            assert ev.cramp_dur_s[0] <= p.duration_s <= ev.cramp_dur_s[1]
            assert all(ev.dip_s[0] <= d <= ev.dip_s[1] for _, d in p.dips)
            if p.end == "fade":
                assert ev.fade_s[0] <= p.fade_s <= ev.fade_s[1]
            if p.level_x_floor is not None:
                assert ev.offsite_x_floor[0] <= p.level_x_floor
        elif isinstance(p, scenario_parts.Rub):
            assert ev.rub_hz[0] <= p.stroke_hz <= ev.rub_hz[1]
            assert ev.rub_acc_g[0] <= p.acc_g <= ev.rub_acc_g[1]
            # the scenario's artefact is after the amplifier's gain, the simulator's before it
            assert ev.rub_artefact_uv[0] <= p.artefact_uv / gain <= ev.rub_artefact_uv[1]
        elif isinstance(p, scenario_parts.Tonic):
            assert ev.tonic_s[0] <= p.duration_s <= ev.tonic_s[1]
        elif isinstance(p, scenario_parts.Flexor | scenario_parts.Extensor):
            assert ev.kick_s[0] <= p.duration_s <= ev.kick_s[1]
        elif isinstance(p, scenario_parts.Clonus):
            assert ev.clonus_s[0] <= p.duration_s <= ev.clonus_s[1]
        elif isinstance(p, scenario_parts.Myoclonic):
            assert ev.myoclonic_jerks[0] <= p.n_jerks <= ev.myoclonic_jerks[1]
        if isinstance(p, scenario_parts.Tonic | scenario_parts.Flexor | scenario_parts.Extensor):
            assert ev.spasm_uv[0] <= p.level_uv <= ev.spasm_uv[1]


def test_issue_14_outside_ranges_are_inside_training() -> None:
    """The independent set's stated ranges (issue 14): cramps 30 s-6 min, spasms 1-15 s (tonic to 60 s),
    rises 0.1-0.4 s, 20-500 µV, gain x0.5-x3, EMG 500-2000 Hz, fades 5-15 s, dips 2-6 s."""
    ev = TRAIN_RANGES.events
    assert _covers(ev.cramp_dur_s, (30.0, 360.0))
    assert _covers(ev.kick_s, (1.0, 15.0)) and _covers(ev.tonic_s, (1.0, 60.0))
    assert _covers(ev.spasm_rise_s, (0.1, 0.4)) and _covers(ev.spasm_uv, (20.0, 500.0))
    assert _covers(ev.fade_s, (5.0, 15.0)) and _covers(ev.dip_s, (2.0, 6.0))
    assert _covers((min(TRAIN_RANGES.emg_rates_hz), max(TRAIN_RANGES.emg_rates_hz)), (400.0, 2500.0))
    assert _covers(TRAIN_RANGES.gain_bands[0], (0.3, 3.5))


def test_heldout_sensors_stay_outside_training() -> None:
    assert not set(HELDOUT_RANGES.emg_rates_hz) & set(TRAIN_RANGES.emg_rates_hz)
    assert not set(HELDOUT_RANGES.acc_rates_hz) & set(TRAIN_RANGES.acc_rates_hz)
    train_gain = TRAIN_RANGES.gain_bands[0]
    assert all(hi <= train_gain[0] or lo >= train_gain[1] for lo, hi in HELDOUT_RANGES.gain_bands)


def test_training_world_has_involuntary_events_on_a_still_shank() -> None:
    """Cramps and tonic spasms with no shank motion at all are in training (physiology.md gives only upper
    bounds for a cramp's tilt and tremor, and no ACC signature for a tonic spasm); the held-out nights keep
    the physiological defaults, and the still draw leaves every other draw of the event unchanged."""
    from crampwatch.simulate._events import Spasm

    ev = TRAIN_RANGES.events
    assert ev.still_prob > 0 and ev.cramp_tremor_g[0] == 0.0 and ev.tonic_tremor_g[0] == 0.0
    assert HELDOUT_RANGES.events.still_prob == 0.0
    cramps = [Cramp(10.0, 30.0, (s, 1), 100.0, ev) for s in range(40)]
    still = [c for c in cramps if c.tremor == 0.0]
    assert 0 < len(still) < len(cramps)
    for c in still:
        assert c.tilt == 0.0 and not np.any(c.acc(500.0, SimParams()))
        moving = Cramp(10.0, 30.0, c.seed, 100.0, replace(ev, still_prob=0.0))
        np.testing.assert_array_equal(moving.kt, c.kt)
    tonics = [Spasm(10.0, 5.0, 5.0, "tonic", (s, 2), 100.0, replace(ev, tonic_move_prob=0.0)) for s in range(40)]
    still_tonics = [t for t in tonics if t.still]
    assert 0 < len(still_tonics) < len(tonics)
    assert all(not np.any(t.acc(500.0, SimParams())) for t in still_tonics)
