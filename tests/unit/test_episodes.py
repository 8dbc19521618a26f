"""A cramp is one episode: wake behaviour and relief dips during it do not end or split it (events.md).

Built from hand-made probability/floor sequences and from the training simulator's own parts (a
``Cramp`` with a ``Wake`` that starts while it goes on), never from the independent scenario suite.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

import crampwatch.simulate._night as night_mod
from crampwatch.recording import Recording
from crampwatch.simulate import Night
from crampwatch.simulate._events import Cramp, Event, Wake
from crampwatch.simulate._params import SimParams
from detector.episodes import discharge_floor
from detector.model import Model, load_model
from detector.offline import detect_recording
from detector.segment import Segment, Segmenter, SegmentRules

HOP = 0.5
REST = 0.0  # log floor at rest
CRAMP = np.log(40.0)  # a cramp's floor, 40x rest


def _segments(probs: np.ndarray, floor: np.ndarray, chunks: list[int], rules: SegmentRules) -> list[Segment]:
    seg = Segmenter(("cramp", "spasm"), HOP, rules)
    out: list[Segment] = []
    start = 0
    for n in chunks:
        sl = slice(start, start + n)
        out += seg.push(probs[sl], np.ones(n), np.ones(n, dtype=bool), None, floor[sl])
        start += n
    return out + seg.finish()


def _sequence() -> tuple[np.ndarray, np.ndarray]:
    """A 120 s cramp (windows 40..279) that the model calls a cramp only for its first 25 s.

    From 25 s on the sleeper sits up and rubs: the model sees movement (probability 0), the discharge
    goes on (floor 40x rest) with two relief dips (3 s at 15x rest, 5 s at 5x rest), then falls back
    abruptly. After it, rubbing bursts (2 s at 30x rest, 2 s back at rest) go on for a minute.
    """
    n = 520
    p = np.zeros((n, 2))
    p[40:90, 0] = 0.98
    floor = np.full((n, 1), REST)
    floor[40:280, 0] = CRAMP
    floor[130:136, 0] = np.log(15.0)  # partial relief, above a quarter of the level: held
    floor[200:210, 0] = np.log(5.0)  # deeper partial relief, still above 3x rest: bridged
    for start in range(283, 400, 8):  # bursts after the offset
        floor[start : start + 4, 0] = np.log(30.0)
    return p, floor


def test_wake_behaviour_and_dips_inside_a_cramp_give_one_episode() -> None:
    p, floor = _sequence()
    whole = _segments(p, floor, [p.shape[0]], SegmentRules())
    assert [(s.type, s.first, s.last) for s in whole] == [("cramp", 40, 279)]
    # interrupted: every window the model did not call involuntary (190 of 240)
    assert whole[0].interrupted == 190
    # confidence is the model's, over the windows it called
    assert whole[0].confidence == pytest.approx(0.98)
    # the same whatever the batching (live frames or a whole file)
    assert _segments(p, floor, [1] * p.shape[0], SegmentRules()) == whole
    assert _segments(p, floor, [7, 93, 1, 419], SegmentRules()) == whole


def test_without_the_episode_level_the_cramp_ends_where_the_model_stops() -> None:
    p, floor = _sequence()
    alone = _segments(p, floor, [p.shape[0]], SegmentRules(episode=None))
    assert [(s.type, s.first, s.last) for s in alone] == [("cramp", 40, 89)]


def test_a_short_run_is_not_an_episode() -> None:
    """Below the cramp minimum (15 s) the model's call is not yet a cramp: the floor does not hold it."""
    p, floor = _sequence()
    p[60:90, 0] = 0.0  # the model calls only 10 s
    assert _segments(p, floor, [p.shape[0]], SegmentRules()) == []


def test_an_episode_keeps_the_rest_it_began_with() -> None:
    """A long cramp fills the running baseline's 30-minute history: the baseline rises to the cramp.

    The pipeline's baseline is the 20th percentile of the last 30 minutes, so once the cramp fills 80 % of
    that history the discharge looks like rest relative to it (the floor falls to 0) and the model, whose
    features are relative to that baseline, stops calling it. The discharge has not changed, so the
    episode, which measures it against the rest it began with, holds it to its end.
    """
    p, floor = _sequence()
    rest = np.zeros_like(floor)  # log baseline (µV): 1 µV...
    rest[150:, 0] = CRAMP  # ...until the baseline has become the cramp itself, 55 s in
    seen = floor - rest  # the floor relative to the running baseline, as the pipeline gives it
    seg = Segmenter(("cramp", "spasm"), HOP, SegmentRules())
    out = seg.push(p, np.ones(p.shape[0]), np.ones(p.shape[0], dtype=bool), None, seen, rest) + seg.finish()
    assert [(s.type, s.first, s.last) for s in out] == [("cramp", 40, 279)]
    # without the rest, the running baseline's view ends it where the baseline caught up
    alone = _segments(p, seen, [p.shape[0]], SegmentRules())
    assert [(s.type, s.first, s.last) for s in alone] == [("cramp", 40, 149)]


def test_discharge_floor_ignores_bursts_with_gaps() -> None:
    rest = np.ones((1, 10, 2))
    steady = np.full((1, 10, 2), 40.0)
    burst = np.ones((1, 10, 2))
    burst[0, 3:7, 0] = 40.0  # 200 ms burst: the floor stays at rest
    floors = discharge_floor(np.vstack([rest, steady, burst]), np.ones((3, 2)))
    assert floors.shape == (3, 2)
    np.testing.assert_allclose(floors[:, 0], [0.0, np.log(40.0), 0.0], atol=1e-3)


# -- the same on a simulated night: the training simulator's parts, with the wake-up moved inside --------

ON, DUR = 300.0, 150.0


def _cramp_with_wake(seed: int) -> Recording:
    """A 150 s cramp at 300 s; the sleeper sits up 20 s in and rubs (ACC motion, electrode-motion artefact
    and voluntary bursts) until 40 s after it; two partial-relief dips (4 s at half the level)."""

    def plan(duration: float, s: int, p: SimParams, density: float, pool: object = None) -> list[Event]:
        cramp = Cramp(ON, DUR, (seed, 1), 300.0)
        kt, ka = list(cramp.kt), list(cramp.ka)
        for t in (ON + 50.0, ON + 100.0):
            j = int(np.searchsorted(kt, t))
            level = float(np.interp(t, kt, ka))
            kt[j:j] = [t, t + 0.5, t + 3.5, t + 4.0]
            ka[j:j] = [level, 0.5 * level, 0.5 * level, level]
        cramp.kt, cramp.ka = np.array(kt), np.array(ka)
        return [cramp, Wake(ON + 20.0, ON + DUR + 40.0, (seed, 2), ON + DUR)]

    with mock.patch.object(night_mod, "plan_events", plan):
        return Night(ON + DUR + 120.0, seed).recording()


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.mark.parametrize("seed", [3, 5])
def test_simulated_cramp_with_wake_behaviour_is_one_event(model: Model, seed: int) -> None:
    rec = _cramp_with_wake(seed)
    cramps = [e for e in detect_recording(rec, model) if e.type in ("cramp", "spasm")]
    assert len(cramps) == 1 and cramps[0].type == "cramp"
    (c,) = cramps
    assert abs(c.onset_s - ON) <= 2.0
    assert abs(c.offset_s - (ON + DUR)) <= 2.0
    # The model is trained on cramps woken and rubbed through (issue 14), so it calls the wake-up part a
    # cramp itself; the episode rules (tested above on probabilities) have little left to bridge. The
    # model before it called 20-100 % of this cramp something else.
    assert 0.0 <= c.interrupted_s < 0.2 * DUR
    # bit-identical however the samples are chunked
    assert detect_recording(rec, model, chunk_s=7.3) == detect_recording(rec, model)
