"""Duration rules shared by the peer detectors: activity mask -> cramp and spasm events.

Both peers end the same way, so the comparison measures their signal pipelines, not their bookkeeping:

1. runs of activity separated by gaps shorter than ``merge_gap_s`` (2 s) become one run (a cramp that
   waxes and wanes, or a clonus run, is one event: ``shared/reference/events.md``);
2. runs shorter than ``min_s`` (0.5 s, the shortest spasm) are dropped;
3. runs of at least ``cramp_min_s`` (30 s) are cramps, shorter ones spasms.

The numbers are the textbook ones from the event definitions, not fitted to any truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..events import Event

__all__ = ["DurationRules", "events_from_activity", "runs"]


@dataclass(frozen=True, slots=True)
class DurationRules:
    """How activity runs become events (seconds)."""

    merge_gap_s: float = 2.0
    """Gaps shorter than this join the runs on either side."""
    min_s: float = 0.5
    """Shorter runs (after merging) are dropped."""
    cramp_min_s: float = 30.0
    """Runs at least this long are cramps; shorter ones are spasms."""


def runs(active: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """``(n, 2)`` array of ``[start, stop)`` index pairs of the True runs of ``active``."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return np.column_stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)]).astype(np.int64)


def events_from_activity(
    active: npt.NDArray[np.bool_],
    rate_hz: float,
    peak_uv: npt.NDArray[np.float64],
    rules: DurationRules,
    *,
    t0_s: float = 0.0,
    patient: str = "offline",
    device: str = "file",
) -> list[Event]:
    """Events from a per-step activity mask sampled at ``rate_hz`` (samples or windows per second).

    ``peak_uv`` (same length as ``active``) gives each event's ``peak_uv``. Peers have no probabilities,
    so ``confidence`` is 1.
    """
    spans = runs(active)
    if spans.size == 0:
        return []
    max_gap = rules.merge_gap_s * rate_hz
    merged: list[list[int]] = [[int(spans[0, 0]), int(spans[0, 1])]]
    for start, stop in spans[1:]:
        if start - merged[-1][1] < max_gap:
            merged[-1][1] = int(stop)
        else:
            merged.append([int(start), int(stop)])
    events = []
    for start, stop in merged:
        duration = (stop - start) / rate_hz
        if duration < rules.min_s:
            continue
        events.append(
            Event(
                patient=patient,
                device=device,
                type="cramp" if duration >= rules.cramp_min_s else "spasm",
                onset_s=t0_s + start / rate_hz,
                offset_s=t0_s + stop / rate_hz,
                confidence=1.0,
                peak_uv=round(float(np.max(peak_uv[start:stop])), 1),
            )
        )
    return events
