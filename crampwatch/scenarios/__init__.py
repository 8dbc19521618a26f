"""Named test scenarios drawn with code independent of the training simulator, on real rest EMG.

The detector was trained on :mod:`crampwatch.simulate`; a check built from that same generator grades
itself (issue 14). This package imports nothing from it. Muscle activity here is band-limited noise
times an amplitude envelope (cramps, spasm subtypes, PLMs, voluntary look-alikes), spliced onto quiet
stretches of *real* surface EMG (UCI lower-limb EMG, BioSPPy examples), with wake behaviour (sitting up,
rubbing, walking) in the accelerometer and as electrode-motion artefact.

    from crampwatch.scenarios import SCENARIOS, build, expected_events
    rec = build(SCENARIOS[0], seed=0)     # a Recording with truth annotations
    expected_events(rec)                  # its cramp / spasm / plm intervals

Real data come from ``$CRAMP_REAL_DATA`` or ``shared/data/real`` above the repository; without them
:func:`build` raises :class:`RealDataMissingError`. See ``docs/scenarios.md``.
"""

from __future__ import annotations

from ._background import ENV_VAR, RealDataMissingError, find_real_data, real_sources
from ._build import Scenario, band_floor, build, expected_events
from ._parts import CONTEXT_TYPES, EVENT_TYPES, SPASM_SUBTYPES
from ._registry import BY_NAME, SCENARIOS

__all__ = [
    "BY_NAME",
    "CONTEXT_TYPES",
    "ENV_VAR",
    "EVENT_TYPES",
    "SCENARIOS",
    "SPASM_SUBTYPES",
    "RealDataMissingError",
    "Scenario",
    "band_floor",
    "build",
    "expected_events",
    "find_real_data",
    "real_sources",
]
