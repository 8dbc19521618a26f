"""Refactors keep behaviour: the shipped model finds the same events on the same simulated nights.

``tests/data/golden_events.json`` was first written by the code before the shared core moved into
``crampwatch/``, and regenerated on purpose twice: for the cramp episode rules (four cramp offsets 1.5-3.5 s
later, nothing else), and for spasm subtypes (detector/subtype.py: the subtype of the six spasms filled in,
no type or time changed). A change that is meant to alter detection regenerates it on purpose, in a commit
that says why::

    python -m tests.unit.test_behaviour_unchanged   # rewrites the golden file
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from crampwatch.simulate import simulate
from detector.model import Model, load_model
from detector.offline import detect_recording

GOLDEN = Path(__file__).parents[1] / "data" / "golden_events.json"
#: (seed, seconds, event density) of each night.
NIGHTS = ((11, 900.0, 3.0), (12, 900.0, 3.0), (21, 600.0, 5.0), (22, 600.0, 5.0), (23, 900.0, 4.0))


def night_events(model: Model, seed: int, duration_s: float, density: float) -> list[list[object]]:
    events = detect_recording(simulate(duration_s, seed=seed, event_density=density), model)
    return [[e.type, round(e.onset_s, 4), round(e.offset_s, 4), e.subtype] for e in events]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.mark.parametrize(("seed", "duration_s", "density"), NIGHTS)
def test_same_events_as_before(model: Model, seed: int, duration_s: float, density: float) -> None:
    golden = json.loads(GOLDEN.read_text())[str(seed)]
    assert night_events(model, seed, duration_s, density) == golden


if __name__ == "__main__":
    m = load_model()
    GOLDEN.write_text(json.dumps({str(s): night_events(m, s, d, k) for s, d, k in NIGHTS}, indent=1) + "\n")
    sys.exit(0)
