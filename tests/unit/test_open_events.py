"""Live, the segmenter announces an event while it goes on ("open"), and withdraws it if it comes to nothing.

The offline path never announces, so its segments (and the golden events) are unchanged.
"""

from __future__ import annotations

import numpy as np

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
