"""PLM scoring by the AASM rules on a synthetic 50 ms envelope."""

from __future__ import annotations

import numpy as np

from detector.plm import LegMovement, PlmScorer

SEG_S = 0.05
PER = 10  # segments per window


def _envelope(
    seconds: float, movements: list[tuple[float, float]], *, rest: float = 2.0, level: float = 25.0
) -> tuple[np.ndarray, np.ndarray]:
    n_seg = int(seconds / SEG_S)
    n_seg -= n_seg % PER
    env = np.full(n_seg, rest)
    for onset, duration in movements:
        env[int(onset / SEG_S) : int((onset + duration) / SEG_S)] = level
    seg_rms = env.reshape(-1, PER, 1)
    baseline = np.full((seg_rms.shape[0], 1), rest)
    return seg_rms, baseline


def _run(seg_rms, baseline, involuntary=None, chunk: int | None = None) -> list[LegMovement]:  # type: ignore[no-untyped-def]
    scorer = PlmScorer(SEG_S)
    n = seg_rms.shape[0]
    involuntary = np.zeros(n, dtype=bool) if involuntary is None else involuntary
    chunk = chunk or n
    out: list[LegMovement] = []
    for s in range(0, n, chunk):
        out += scorer.push(seg_rms[s : s + chunk], baseline[s : s + chunk], involuntary[s : s + chunk])
    return out + scorer.finish()


def test_a_series_of_four_or_more_is_periodic() -> None:
    moves = [(30.0 + 20 * i, 2.0) for i in range(5)]
    found = _run(*_envelope(300, moves))
    assert [round(lm.onset_s, 2) for lm in found] == [m[0] for m in moves]
    # The 0.15 s RMS envelope (SEV) stretches a movement by at most its 2 trailing segments.
    assert all(0.0 <= (lm.offset_s - lm.onset_s) - 2.0 <= 0.11 for lm in found), found


def test_three_movements_are_not_a_series_and_long_ones_are_not_lms() -> None:
    assert _run(*_envelope(300, [(30.0, 2.0), (50.0, 2.0), (70.0, 2.0)])) == []
    assert _run(*_envelope(300, [(30.0 + 20 * i, 12.0) for i in range(5)])) == []  # > 10 s: not LMs


def test_intervals_outside_5_to_90_s_break_the_series() -> None:
    moves = [(30.0, 1.0), (33.0, 1.0), (36.0, 1.0), (39.0, 1.0), (42.0, 1.0)]  # 3 s apart
    assert _run(*_envelope(200, moves)) == []


def test_movements_inside_involuntary_windows_are_excluded() -> None:
    moves = [(30.0 + 20 * i, 2.0) for i in range(5)]
    seg_rms, baseline = _envelope(300, moves)
    involuntary = np.zeros(seg_rms.shape[0], dtype=bool)
    involuntary[int(70 / 0.5) : int(73 / 0.5)] = True  # the third movement is part of a spasm
    found = _run(seg_rms, baseline, involuntary)
    assert [round(lm.onset_s) for lm in found] == [30, 50, 90, 110]


def test_chunking_changes_nothing() -> None:
    env = _envelope(400, [(30.0 + 17 * i, 1.5) for i in range(12)])
    seg_rms, baseline = env
    assert _run(seg_rms, baseline) == _run(seg_rms, baseline, chunk=1) == _run(seg_rms, baseline, chunk=7)
