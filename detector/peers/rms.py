"""The hobbyist's detector: band-pass, 250 ms RMS, a fixed multiple of the recording's noise, durations.

What someone with an EMG sensor and a weekend would write, with the textbook numbers and nothing fitted
to any truth (``docs/peers.md``):

1. each EMG channel is band-passed 20-450 Hz (4th-order Butterworth, zero phase; the SENIAM / De Luca
   band, physiology.md §7); the upper edge is capped at 0.45 x the sample rate, so at 200 Hz it is
   20-90 Hz. No notch (SENIAM advises against one), so mains hum stays in;
2. RMS over consecutive, non-overlapping 250 ms windows;
3. the noise level is the channel's median window RMS over the whole recording (most of a night is
   rest), and a window is active when any channel's RMS exceeds ``threshold_x_median`` (3) times its
   own noise level;
4. :mod:`._rules`: gaps < 2 s merged, runs < 0.5 s dropped, runs >= 30 s are cramps, shorter ones
   spasms.

It uses EMG only; the accelerometer is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from crampwatch.errors import StreamError
from crampwatch.recording import Recording

from ..events import Event
from ._rules import DurationRules, events_from_activity

__all__ = ["RmsSettings", "detect"]


@dataclass(frozen=True, slots=True)
class RmsSettings:
    """Parameters of the RMS-threshold detector (defaults: see the module docstring)."""

    low_hz: float = 20.0
    """Band-pass lower edge."""
    high_hz: float = 450.0
    """Band-pass upper edge, capped at ``max_high_fraction`` x the sample rate."""
    max_high_fraction: float = 0.45
    order: int = 4
    window_s: float = 0.25
    """RMS window (consecutive, non-overlapping)."""
    threshold_x_median: float = 3.0
    """A window is active above this multiple of the channel's median window RMS."""
    rules: DurationRules = field(default_factory=DurationRules)


def detect(rec: Recording, settings: RmsSettings | None = None) -> list[Event]:
    """Cramp and spasm events of ``rec`` (seconds from the recording start)."""
    s = settings or RmsSettings()
    emg = rec.emg
    fs = emg.rate_hz
    high = min(s.high_hz, s.max_high_fraction * fs)
    if high <= s.low_hz:
        raise StreamError(
            f"RMS detector: EMG at {fs:g} Hz leaves no {s.low_hz:g}-{s.high_hz:g} Hz band "
            f"(upper edge capped at {s.max_high_fraction:g} x rate = {high:g} Hz); it needs >= "
            f"{s.low_hz / s.max_high_fraction:.0f} Hz"
        )
    n_win = max(1, round(s.window_s * fs))
    n = emg.n_samples // n_win
    if n == 0:
        return []
    sos = sps.butter(s.order, [s.low_hz, high], btype="bandpass", fs=fs, output="sos")
    filtered = sps.sosfiltfilt(sos, emg.data - emg.data.mean(axis=0), axis=0)
    windows = filtered[: n * n_win].reshape(n, n_win, -1)
    rms = np.sqrt(np.mean(windows**2, axis=1))  # (n, channels)
    noise = np.median(rms, axis=0)
    active = np.any(rms > s.threshold_x_median * noise, axis=1)
    return events_from_activity(active, fs / n_win, rms.max(axis=1), s.rules, t0_s=emg.t0_s)
