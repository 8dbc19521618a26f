"""Synthetic overnight leg sEMG + ACC with ground truth: cramps, spasms, PLMs and their look-alikes.

No annotated cramp/spasm sleep recordings exist (``shared/reference/physiology.md`` §9), so true events
come from this generator: motor-unit spike trains x MUAP templates for EMG, a planned posture schedule
for gravity, and a sensor model (gain, amplifier noise, mains, ECG bleed, ADC quantisation and rail).
Numbers and sources are in the docstrings of :mod:`._params`, :mod:`._synth`, :mod:`._events`,
:mod:`._night`. Units: EMG µV (after ``gain``, quantised to ``adc_resolution_uv``, clipped at ±``rail_uv``),
ACC g. ACC axes (shank sensor): x along the shank towards the foot, y lateral, z anterior (out of the
shin); supine reads ~(0, 0, 1), side ~(0, ±1, 0), standing ~(-1, 0, 0). Truth follows
``shared/reference/events.md``: scored ``cramp``, ``spasm`` (subtype), ``plm``; context ``precursor``,
``wake``, ``turn``, ``voluntary``, ``fasciculation`` (one per burst region), ``artifact``, ``pop``,
``lead_off``.

    night = Night(8 * 3600, seed=7)              # params drawn from TRAIN_RANGES
    emg, acc = night.render(0.0, 60.0)           # any span; chunks concatenate exactly
    rec = simulate(600, seed=1, event_density=3)  # whole night as a Recording, with annotations
"""

from __future__ import annotations

from ._night import Night, simulate
from ._params import HELDOUT_RANGES, TRAIN_RANGES, ParamRanges, SimParams

__all__ = ["HELDOUT_RANGES", "TRAIN_RANGES", "Night", "ParamRanges", "SimParams", "simulate"]
