"""Live, the segmenter announces an event while it goes on ("open"), and withdraws it if it comes to nothing.

The offline path never announces, so its segments (and the golden events) are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from detector.features import NAMES
from detector.model import Model
from detector.pipeline import DevicePipeline
from detector.segment import Segment, Segmenter

TYPES = ("cramp", "spasm")
HOP_S = 0.5


def _run(rows: list[tuple[float, float]], announce_after: int | None = 4) -> list[Segment]:
    seg = Segmenter(TYPES, HOP_S, announce_after=announce_after)
    probs = np.array(rows, dtype=float)
    n = probs.shape[0]
    out = seg.push(probs, np.full(n, 100.0), np.ones(n, dtype=bool))
    return out + seg.finish()


def test_a_cramp_is_announced_after_four_involuntary_windows_then_finalised_with_the_same_onset() -> None:
    rows = [(0.0, 0.0)] * 4 + [(0.97, 0.01)] * 40 + [(0.0, 0.0)] * 20
    out = _run(rows)
    assert [s.state for s in out] == ["open", "final"]
    opened, final = out
    assert opened.type == final.type == "cramp"
    assert opened.first == final.first == 4
    assert opened.last == 7  # announced at the 4th involuntary window, not at the end
    assert final.last == 43


def test_an_announced_event_too_short_for_its_type_is_withdrawn() -> None:
    # 6 s of "cramp": announced, but a cramp needs 15 s, so it is withdrawn and no final event follows.
    out = _run([(0.97, 0.0)] * 12 + [(0.0, 0.0)] * 20)
    assert [(s.state, s.type) for s in out] == [("open", "cramp"), ("cancelled", "cramp")]


def test_an_announced_event_that_turns_out_another_type_is_withdrawn_then_finalised() -> None:
    rows = [(0.2, 0.78)] * 4 + [(0.9, 0.05)] * 60 + [(0.0, 0.0)] * 20
    out = _run(rows)
    assert [(s.state, s.type) for s in out] == [("open", "spasm"), ("cancelled", "spasm"), ("final", "cramp")]
    assert len({s.first for s in out}) == 1  # one onset: one event id


def test_without_announcing_the_segments_are_the_final_ones_alone() -> None:
    rows = [(0.0, 0.0)] * 4 + [(0.97, 0.01)] * 40 + [(0.2, 0.78)] * 3 + [(0.0, 0.0)] * 20
    with_open = [s for s in _run(rows) if s.state == "final"]
    assert with_open == _run(rows, announce_after=None)
    assert all(s.state == "final" for s in _run(rows, announce_after=None))


# -- a spasm the subtype rules reject (jerks at a voluntary rhythm), through the whole pipeline -------------


@dataclass(frozen=True)
class _BurstsAreSpasms(Model):
    """A stand-in window model: every window well above rest is a spasm (probability 0.99)."""

    def probabilities(self, x: Any, types: tuple[str, ...]) -> Any:
        out = np.zeros((x.shape[0], len(types)))
        out[:, types.index("spasm")] = np.where(x[:, NAMES.index("emg_rel_hi")] > 1.0, 0.99, 0.0)
        return out


def _stepping_bursts() -> np.ndarray:
    """60 s at 1 kHz of 2 µV rest with 0.2 s bursts of 100 µV every 0.75 s from 20 s to 24 s (stepping)."""
    rng = np.random.default_rng(4)
    emg = rng.standard_normal((60_000, 1)) * 2.0
    for start in np.arange(20.0, 24.0, 0.75):
        a = round(start * 1000)
        emg[a : a + 200, 0] += rng.standard_normal(200) * 100.0
    return emg


@pytest.mark.parametrize("open_events", [False, True])
def test_a_spasm_that_fits_no_subtype_is_dropped_and_withdrawn_if_announced(open_events: bool) -> None:
    model = _BurstsAreSpasms(cast(Any, None), ("cramp", "movement", "other", "plm", "spasm"), {}, Path("stand-in"))
    pipe = DevicePipeline(model, expect_acc=False, open_events=open_events)
    events = [*pipe.push_emg(_stepping_bursts(), 1000.0).events, *pipe.finish().events]
    spasms = [(e.state, e.event_id) for e in events if e.type == "spasm"]
    if not open_events:
        assert spasms == []
        return
    # live: announced while it went on, then withdrawn under the same id; no final spasm
    assert [s for s, _ in spasms] == ["open", "cancelled"]
    assert len({i for _, i in spasms}) == 1
