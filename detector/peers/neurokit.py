"""The researcher's detector: NeuroKit2's EMG pipeline with its defaults, then duration rules.

``nk.emg_process(signal, sampling_rate=fs)`` is ``emg_clean`` -> ``emg_amplitude`` -> ``emg_activation``
with these defaults (NeuroKit2 0.2.13), all kept as they are:

- ``emg_clean(method="biosppy")``: 4th-order Butterworth **100 Hz high-pass** (zero phase), mean removed;
- ``emg_amplitude``: Teager-Kaiser energy, 10-400 Hz band-pass, rectification, 8 Hz low-pass, with the
  filters designed for **1 kHz** whatever the real rate (the function takes no ``sampling_rate``);
- ``emg_activation(method="threshold")``: active where the amplitude exceeds **0.1 x its standard
  deviation** over the whole recording; activations shorter than 50 ms are dropped, and so is one
  that is not preceded by at least 50 ms of baseline (e.g. one starting at the first sample).

It runs on the *most active* channel (largest standard deviation after ``emg_clean``); then
:mod:`._rules` (gaps < 2 s merged, runs < 0.5 s dropped, >= 30 s cramp, else spasm).

Two departures, neither of which changes a result:

- ``emg_activation`` is recomposed from the public functions it calls (``signal_binarize`` and
  ``events_find`` with the same arguments): its output formatting walks every sample through pandas
  ``.loc`` (~60 µs a sample, over 2 minutes for a 30-minute night at 1.5 kHz). The onsets and offsets
  are identical (``tests/unit/test_peers.py`` checks it against ``nk.emg_activation``).
- At 200 Hz and below, ``emg_clean``'s 100 Hz high-pass is at or above Nyquist and scipy refuses it;
  there the cleaning is a 4th-order Butterworth 20 Hz high-pass (``nk.signal_filter``), the lower edge
  SENIAM recommends, and the rest of the pipeline is unchanged.

NeuroKit2 is an optional dependency (``pip install neurokit2``), imported only when this detector runs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from crampwatch.errors import ConfigError
from crampwatch.recording import Recording

from ..events import Event
from ._rules import DurationRules, events_from_activity

__all__ = ["NeurokitSettings", "activation", "detect", "require"]

FloatArray = npt.NDArray[np.float64]

#: ``emg_clean``'s fixed high-pass (Hz); usable only when it is below Nyquist.
CLEAN_HIGHPASS_HZ = 100.0


@dataclass(frozen=True, slots=True)
class NeurokitSettings:
    """Parameters around the NeuroKit2 pipeline (the pipeline itself runs on its defaults)."""

    fallback_highpass_hz: float = 20.0
    """Cleaning high-pass used when the rate is too low for ``emg_clean``'s 100 Hz."""
    rules: DurationRules = field(default_factory=DurationRules)


def require() -> None:
    """Raise ConfigError (with the install command) unless NeuroKit2 can be imported."""
    _neurokit()


def _neurokit() -> Any:
    try:
        import neurokit2 as nk  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(
            "--detector neurokit needs NeuroKit2, which is not installed: `pip install neurokit2`"
        ) from None
    return nk


def clean(x: FloatArray, fs: float, settings: NeurokitSettings | None = None) -> FloatArray:
    """``nk.emg_clean`` (100 Hz high-pass), or the 20 Hz fallback where 100 Hz is not below Nyquist."""
    nk = _neurokit()
    s = settings or NeurokitSettings()
    if fs / 2 > CLEAN_HIGHPASS_HZ:
        return np.asarray(nk.emg_clean(x, sampling_rate=fs), dtype=np.float64)
    filtered = nk.signal_filter(x, sampling_rate=fs, lowcut=s.fallback_highpass_hz, method="butterworth", order=4)
    return np.asarray(filtered - np.mean(filtered), dtype=np.float64)


def activation(amplitude: FloatArray, fs: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Onset and offset sample indices exactly as ``nk.emg_activation(amplitude, sampling_rate=fs)``.

    Method ``"threshold"``, threshold 0.1 x SD, ``duration_min`` 50 ms; an activation counts only when
    it starts where a baseline run of at least 50 ms ends, and its offset lies inside the signal.
    """
    nk = _neurokit()
    duration_min = int(0.05 * fs)
    threshold = 0.1 * np.std(amplitude)
    activity = np.asarray(nk.signal_binarize(amplitude, method="threshold", threshold=threshold))
    active = nk.events_find(activity, threshold=0.5, threshold_keep="above", duration_min=duration_min)
    rest = nk.events_find(activity == 0, threshold=0.5, threshold_keep="above", duration_min=duration_min)
    onsets = np.asarray(active["onset"], dtype=np.int64)
    offsets = onsets + np.asarray(active["duration"], dtype=np.int64)
    rest_ends = np.asarray(rest["onset"], dtype=np.int64) + np.asarray(rest["duration"], dtype=np.int64)
    keep = np.isin(onsets, rest_ends) & (offsets < amplitude.shape[0])
    return onsets[keep], offsets[keep]


def detect(rec: Recording, settings: NeurokitSettings | None = None) -> list[Event]:
    """Cramp and spasm events of ``rec`` (seconds from the recording start)."""
    nk = _neurokit()
    s = settings or NeurokitSettings()
    emg = rec.emg
    fs = emg.rate_hz
    with warnings.catch_warnings():
        # NeuroKit warns, for example, "No events found" on every quiet recording.
        warnings.simplefilter("ignore", nk.misc.NeuroKitWarning)
        cleaned = [clean(emg.data[:, j], fs, s) for j in range(emg.data.shape[1])]
        best = cleaned[int(np.argmax([np.std(c) for c in cleaned]))]
        amplitude = np.asarray(nk.emg_amplitude(best), dtype=np.float64)
        onsets, offsets = activation(amplitude, fs)
    active = np.zeros(amplitude.shape[0], dtype=bool)
    for on, off in zip(onsets, offsets, strict=True):
        active[on:off] = True
    return events_from_activity(active, fs, np.abs(best), s.rules, t0_s=emg.t0_s)
