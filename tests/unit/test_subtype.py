"""Spasm subtype rules (detector/subtype.py) on synthetic envelopes and gravity traces, one rule at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector.pipeline import WindowTable
from detector.subtype import (
    CLONUS_MIN_SHARE,
    JERK_MAX_S,
    SpasmSpan,
    bursts_s,
    classify,
    clonus_share,
    span_from_windows,
)

SEG_S = 0.05
HOP_S = 0.5
REST_UV = 2.0
SUPINE = np.array([0.0, 0.0, 1.0])  # lying on the back: the shin faces up (x towards the foot, z out of the shin)
SIDE = np.array([0.0, 1.0, 0.0])  # lying on the side: the leg's lateral axis faces up


def _rng() -> np.random.Generator:
    return np.random.default_rng(3)


def tonic_envelope(seconds: float, level_uv: float = 60.0) -> np.ndarray:
    """A sustained discharge: random motor-unit summation, no rhythm (envelope SD ~25 % of its level)."""
    n = round(seconds / SEG_S)
    return level_uv * (1.0 + 0.25 * _rng().standard_normal(n)).clip(0.3)[:, None]


def clonus_envelope(seconds: float, rate_hz: float = 6.0) -> np.ndarray:
    """Bursts ~70 ms long at ``rate_hz``, with some amplitude jitter, on the resting floor."""
    t = np.arange(round(seconds / SEG_S)) * SEG_S
    beat = np.maximum(np.cos(2 * np.pi * rate_hz * t), 0.0) ** 3
    env = REST_UV + 80.0 * beat * (1.0 + 0.2 * _rng().standard_normal(t.size)).clip(0.2)
    return np.asarray(env[:, None])


def jerks_envelope(seconds: float, starts_s: list[float], width_s: float) -> np.ndarray:
    n = round(seconds / SEG_S)
    env = np.full(n, REST_UV) * (1.0 + 0.1 * _rng().standard_normal(n)).clip(0.5)
    for s in starts_s:
        env[round(s / SEG_S) : round((s + width_s) / SEG_S)] = 120.0
    return np.asarray(env[:, None])


def acc_trace(
    duration_s: float, moved: np.ndarray | None, back: bool, start: np.ndarray = SUPINE, jerk_g: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-window gravity and activity from 3 s before the onset to 6 s after the offset.

    ``moved``: the gravity direction the leg moves to at the onset (``None``: it does not move); ``back``:
    it returns to ``start`` at the offset, moving back (else the new posture is held).
    """
    t = np.arange(-3.0, duration_s + 6.0 + 1e-9, HOP_S)
    gravity = np.tile(start, (t.size, 1))
    activity = np.full(t.size, 0.002)
    if moved is not None:
        during = t >= 0.75
        if back:
            during &= t < duration_s + 2.0
        gravity[during] = moved
        activity[(t >= 0.25) & (t <= 2.25)] = jerk_g
        if back:
            activity[(t >= duration_s + 1.0) & (t <= duration_s + 3.0)] = 0.3 * jerk_g
    return gravity, activity, t


def rotated(g: np.ndarray, axis: np.ndarray, deg: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.asarray(g * c + np.cross(a, g) * s + a * np.dot(a, g) * (1 - c))


def span(env: np.ndarray, duration_s: float, acc: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> SpasmSpan:
    if acc is None:
        return SpasmSpan(env, np.array([REST_UV]), SEG_S, duration_s)
    gravity, activity, t = acc
    return SpasmSpan(env, np.array([REST_UV]), SEG_S, duration_s, gravity, activity, t)


Y = np.array([0.0, 1.0, 0.0])


def test_clonus_beat_at_6_hz_is_clonus_with_or_without_acc() -> None:
    env = clonus_envelope(8.0)
    assert clonus_share(env[:, 0], SEG_S) >= CLONUS_MIN_SHARE
    assert classify(span(env, 8.0, None)).subtype == "clonus"
    assert classify(span(env, 8.0, acc_trace(8.0, None, back=True))).subtype == "clonus"


@pytest.mark.parametrize("rate_hz", [1.4, 2.5, 9.5])
def test_a_beat_outside_the_clonus_rates_is_not_clonus(rate_hz: float) -> None:
    # 1.4 Hz: a cramp's waxing and waning; 2.5 Hz and 9.5 Hz: rhythms outside 4.7-7 Hz.
    env = clonus_envelope(8.0, rate_hz)
    assert clonus_share(env[:, 0], SEG_S) < CLONUS_MIN_SHARE
    assert classify(span(env, 8.0, None)).subtype != "clonus"


def test_sustained_discharge_without_movement_is_tonic() -> None:
    env = tonic_envelope(10.0)
    assert clonus_share(env[:, 0], SEG_S) < CLONUS_MIN_SHARE
    assert classify(span(env, 10.0, None)).subtype == "tonic"
    assert classify(span(env, 10.0, acc_trace(10.0, None, back=True))).subtype == "tonic"


def test_one_short_jerk_is_myoclonic() -> None:
    env = jerks_envelope(1.0, [0.4], 0.2)
    lengths, contrast = bursts_s(env[:, 0] / REST_UV, SEG_S)
    assert lengths == pytest.approx([0.2])
    assert contrast > 10.0
    assert classify(span(env, 1.0, None)).subtype == "myoclonic"


def test_a_series_of_jerks_at_0_4_hz_is_one_myoclonic_spasm() -> None:
    env = jerks_envelope(7.0, [0.2, 2.7, 5.2], 0.15)
    decision = classify(span(env, 7.0, acc_trace(7.0, None, back=True)))
    assert (decision.subtype, decision.bursts) == ("myoclonic", 3)


@pytest.mark.parametrize("every_s", [0.5, 0.75, 1.0, 1.7])
def test_jerks_at_a_voluntary_rhythm_are_no_spasm(every_s: float) -> None:
    """Short bursts every 0.5-1.7 s (0.6-2 Hz: stepping, rubbing) are neither myoclonus (0.3-0.5 Hz) nor
    clonus (4.7-7 Hz): no spasm subtype fits, so the event is not a spasm, with or without ACC."""
    starts = [0.3 + every_s * k for k in range(4)]
    seconds = starts[-1] + 0.6
    env = jerks_envelope(seconds, starts, 0.2)
    for acc in (None, acc_trace(seconds, None, back=True)):
        decision = classify(span(env, seconds, acc))
        assert not decision.spasm and decision.subtype == ""
        assert decision.jerk_interval_s == pytest.approx(every_s, abs=0.06)


@pytest.mark.parametrize("every_s", [2.0, 2.5, 3.3])
def test_jerks_at_the_spinal_myoclonus_rate_stay_a_spasm(every_s: float) -> None:
    starts = [0.3 + every_s * k for k in range(3)]
    seconds = starts[-1] + 0.6
    decision = classify(span(jerks_envelope(seconds, starts, 0.2), seconds, None))
    assert decision.spasm and decision.subtype == "myoclonic"


def test_a_burst_longer_than_a_jerk_is_not_myoclonic() -> None:
    env = jerks_envelope(2.0, [0.2], JERK_MAX_S + 0.3)
    assert classify(span(env, 2.0, None)).subtype == "tonic"


def test_leg_pulled_up_lying_supine_is_flexor() -> None:
    # The knee end rises: gravity turns from z towards -x (a negative turn about y).
    env = tonic_envelope(1.5)
    decision = classify(span(env, 1.5, acc_trace(1.5, rotated(SUPINE, Y, -40.0), back=True)))
    assert decision.subtype == "flexor"
    assert decision.sagittal_deg == pytest.approx(-40.0, abs=1.0)


def test_kick_lying_supine_is_extensor() -> None:
    env = tonic_envelope(1.5)
    decision = classify(span(env, 1.5, acc_trace(1.5, rotated(SUPINE, Y, 30.0), back=False)))
    assert decision.subtype == "extensor"
    assert decision.sagittal_deg == pytest.approx(30.0, abs=1.0)


def test_the_sagittal_sign_holds_lying_prone() -> None:
    prone = -SUPINE
    env = tonic_envelope(1.5)
    flexor = acc_trace(1.5, rotated(prone, Y, -40.0), back=True, start=prone)
    extensor = acc_trace(1.5, rotated(prone, Y, 30.0), back=False, start=prone)
    assert classify(span(env, 1.5, flexor)).subtype == "flexor"
    assert classify(span(env, 1.5, extensor)).subtype == "extensor"


def test_lying_on_the_side_a_jerk_moving_back_is_flexor_and_one_that_stays_is_extensor() -> None:
    # Gravity along y: a sagittal turn leaves it in place, so the sign cannot be read.
    env = tonic_envelope(1.5)
    back = classify(span(env, 1.5, acc_trace(1.5, SIDE, back=True, start=SIDE, jerk_g=0.6)))
    assert math.isnan(back.sagittal_deg)
    assert back.subtype == "flexor"
    stays = classify(span(env, 1.5, acc_trace(1.5, SIDE, back=False, start=SIDE, jerk_g=0.6)))
    assert stays.subtype == "extensor"


def test_lying_on_the_side_a_held_roll_is_extensor() -> None:
    env = tonic_envelope(1.5)
    tilted = rotated(SIDE, np.array([1.0, 0.0, 0.0]), 25.0)  # rolls with the leg and stays there
    held = classify(span(env, 1.5, acc_trace(1.5, tilted, back=False, start=SIDE)))
    assert math.isnan(held.sagittal_deg)
    assert held.subtype == "extensor"
    assert "held" in held.reason


def test_without_accelerometer_a_moving_spasm_is_tonic() -> None:
    decision = classify(span(tonic_envelope(1.5), 1.5, None))
    assert decision.subtype == "tonic"
    assert "no accelerometer" in decision.reason


def test_a_movement_long_after_the_onset_does_not_make_a_tonic_spasm_flexor() -> None:
    env = tonic_envelope(30.0)
    gravity, activity, t = acc_trace(30.0, None, back=True)
    late = t >= 20.0  # a turn 20 s into a tonic spasm
    gravity[late] = rotated(SUPINE, Y, -60.0)
    activity[(t >= 19.5) & (t <= 21.5)] = 0.5
    assert classify(span(env, 30.0, (gravity, activity, t))).subtype == "tonic"


def test_span_from_windows_reads_the_pipelines_history() -> None:
    """The span of windows 20..25 of a table: envelope of windows 19..25, gravity from before the onset."""
    n, channels = 60, 2
    table = WindowTable()
    seg = np.full((n, 10, channels), REST_UV)
    seg[20:26, :, 1] = 50.0
    gravity = np.tile(SUPINE, (n, 1))
    gravity[21:24] = rotated(SUPINE, Y, -40.0)
    base = np.full((n, 20), np.log10(0.002))
    table.append(
        seg_rms=seg, baseline=np.full((n, channels), REST_UV), gravity=gravity, base=base, valid=np.ones(n, bool)
    )
    table.drop_front(5)  # the history starts at window 5
    s = span_from_windows(table, 20, 25, SEG_S, HOP_S)
    assert s.envelope.shape == (7 * 10, channels)
    assert s.gravity is not None and s.window_t is not None
    assert s.window_t[0] <= -0.5 and s.window_t[-1] >= s.duration_s + 5.0
    assert classify(s).subtype == "flexor"
    no_acc = WindowTable()
    no_acc.append(
        seg_rms=seg, baseline=np.full((n, channels), REST_UV), gravity=np.full((n, 3), np.nan), base=base,
        valid=np.ones(n, bool),
    )  # fmt: skip
    assert span_from_windows(no_acc, 20, 25, SEG_S, HOP_S).gravity is None


def test_a_long_spasm_reads_the_same_windows_however_much_history_is_left() -> None:
    """How far back the history reaches at the close depends on chunking; the span must not."""
    n, first, last = 400, 100, 300  # a 100 s spasm
    rng = np.random.default_rng(5)
    columns = {
        "seg_rms": rng.uniform(20.0, 80.0, (n, 10, 2)),
        "baseline": np.full((n, 2), REST_UV),
        "gravity": np.tile(SUPINE, (n, 1)),
        "base": rng.uniform(-3.0, -1.0, (n, 20)),
        "valid": np.ones(n, bool),
    }
    spans = []
    for drop in (last + 9 - 120, last + 9 - 120 - 30, 0):  # PAST rows before the close, more, everything
        table = WindowTable()
        table.append(**columns)
        table.drop_front(drop)
        spans.append(span_from_windows(table, first, last, SEG_S, HOP_S))
    for s in spans[1:]:
        assert np.array_equal(s.envelope, spans[0].envelope)
        assert s.gravity is not None and spans[0].gravity is not None
        assert np.array_equal(s.gravity, spans[0].gravity) and classify(s) == classify(spans[0])
    assert math.isnan(classify(spans[0]).moved_deg)  # the onset is out of reach: no onset movement
