"""Causal IIR filters whose state is carried between calls.

Filtering chunk by chunk with carried state gives bit-identical output to filtering the whole signal at
once, which is what makes live (frame by frame) and offline (whole file) detection agree exactly.

EMG is band-limited to 20-95 Hz for every sample rate: 95 Hz fits under the 100 Hz Nyquist limit of
200 Hz wearables (Myo, Ganglion), so every feature sees the same band whatever the device. Mains at 50
and 60 Hz falls inside that band and is notched out; its harmonics fall outside it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal

EMG_BAND_HZ = (20.0, 95.0)
MAINS_HZ = (50.0, 60.0)
ACC_LOWPASS_HZ = 10.0

FloatArray = npt.NDArray[np.float64]


def emg_filter(rate_hz: float) -> FloatArray:
    """Second-order sections: 4th-order Butterworth 20-95 Hz band-pass plus 50 and 60 Hz notches."""
    high = min(EMG_BAND_HZ[1], 0.475 * rate_hz)
    sections = [signal.butter(4, [EMG_BAND_HZ[0], high], btype="bandpass", fs=rate_hz, output="sos")]
    for f0 in MAINS_HZ:
        if f0 < 0.5 * rate_hz:
            b, a = signal.iirnotch(f0, Q=30.0, fs=rate_hz)
            sections.append(signal.tf2sos(b, a))
    return np.vstack(sections).astype(np.float64)


def acc_filter(rate_hz: float) -> FloatArray:
    """2nd-order Butterworth low-pass at 10 Hz (or 0.4 x rate for slow sensors)."""
    cutoff = min(ACC_LOWPASS_HZ, 0.4 * rate_hz)
    return np.asarray(signal.butter(2, cutoff, btype="lowpass", fs=rate_hz, output="sos"), dtype=np.float64)


class StreamFilter:
    """Apply ``sos`` to successive ``(n, channels)`` chunks of one stream."""

    def __init__(self, sos: FloatArray, n_channels: int, *, initial: FloatArray | None = None) -> None:
        self.sos = sos
        if initial is not None:
            # Start in steady state for a constant input (gravity on an accelerometer), not from zero.
            zi = signal.sosfilt_zi(sos)
            self._zi: FloatArray = zi[:, :, None] * initial[None, None, :]
        else:
            self._zi = np.zeros((sos.shape[0], 2, n_channels))

    def __call__(self, chunk: FloatArray) -> FloatArray:
        if chunk.shape[0] == 0:
            return chunk.copy()
        out, self._zi = signal.sosfilt(self.sos, chunk, axis=0, zi=self._zi)
        return np.asarray(out, dtype=np.float64)
