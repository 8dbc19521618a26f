"""Causal IIR filters whose state is carried between calls.

Filtering chunk by chunk with carried state gives bit-identical output to filtering the whole signal at
once, which is what makes live (frame by frame) and offline (whole file) detection agree exactly.

EMG is band-limited to 20-95 Hz for every sample rate: 95 Hz fits under the 100 Hz Nyquist limit of
200 Hz wearables (Myo, Ganglion), so every feature sees the same band whatever the device. Mains at 50
and 60 Hz falls inside that band and is notched out; its harmonics fall outside it.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ._designs import ACC_SOS, ACC_ZI, EMG_SOS

EMG_BAND_HZ = (20.0, 95.0)
MAINS_HZ = (50.0, 60.0)
ACC_LOWPASS_HZ = 10.0

FloatArray = npt.NDArray[np.float64]


# Why tables and a private import: ``import scipy.signal`` costs ~0.9 s of CPU (it imports scipy.stats and
# wraps every function for the array API), a fifth of an 8-h night's whole detection. Detection needs only
# the coefficients below and scipy's compiled sosfilt loop. The coefficients scipy designs for the common
# sample rates are in ``_designs.py`` (bit for bit: tests/unit/test_filters.py; regenerate with
# ``write_design_table()``); other rates are designed by scipy.signal as before.


def emg_filter(rate_hz: float) -> FloatArray:
    """Second-order sections: 4th-order Butterworth 20-95 Hz band-pass plus 50 and 60 Hz notches."""
    if rate_hz in EMG_SOS:
        return np.array(EMG_SOS[rate_hz], dtype=np.float64)
    return design_emg_filter(rate_hz)


def acc_filter(rate_hz: float) -> FloatArray:
    """2nd-order Butterworth low-pass at 10 Hz (or 0.4 x rate for slow sensors)."""
    if rate_hz in ACC_SOS:
        return np.array(ACC_SOS[rate_hz], dtype=np.float64)
    return design_acc_filter(rate_hz)


def design_emg_filter(rate_hz: float) -> FloatArray:
    """:func:`emg_filter` designed by scipy.signal."""
    from scipy import signal

    high = min(EMG_BAND_HZ[1], 0.475 * rate_hz)
    sections = [signal.butter(4, [EMG_BAND_HZ[0], high], btype="bandpass", fs=rate_hz, output="sos")]
    for f0 in MAINS_HZ:
        if f0 < 0.5 * rate_hz:
            b, a = signal.iirnotch(f0, Q=30.0, fs=rate_hz)
            sections.append(signal.tf2sos(b, a))
    return np.vstack(sections).astype(np.float64)


def design_acc_filter(rate_hz: float) -> FloatArray:
    """:func:`acc_filter` designed by scipy.signal."""
    from scipy import signal

    cutoff = min(ACC_LOWPASS_HZ, 0.4 * rate_hz)
    return np.asarray(signal.butter(2, cutoff, btype="lowpass", fs=rate_hz, output="sos"), dtype=np.float64)


def steady_state(sos: FloatArray) -> FloatArray:
    """``scipy.signal.sosfilt_zi(sos)``: the state of each section after a long constant input of 1."""
    for rate, table in ACC_SOS.items():
        if np.array_equal(sos, table):
            return np.array(ACC_ZI[rate], dtype=np.float64)
    from scipy import signal

    return np.asarray(signal.sosfilt_zi(sos), dtype=np.float64)


SosLoop = Callable[[FloatArray, FloatArray, FloatArray], None]


@functools.cache
def _sosfilt_loop() -> SosLoop:
    """scipy's compiled sosfilt loop ``(sos, x (channels, n), zi (channels, sections, 2))``, in place.

    It is loaded from its file without running ``scipy/signal/__init__.py`` (see above). It needs only
    numpy. If scipy moved it, the public ``scipy.signal.sosfilt`` does the same work (slower import).
    """
    try:
        spec = importlib.util.find_spec("scipy")
        assert spec is not None and spec.origin is not None
        folder = Path(spec.origin).parent / "signal"
        (path,) = (
            folder / f"_sosfilt{suffix}"
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if (folder / f"_sosfilt{suffix}").is_file()
        )
        name = "scipy.signal._sosfilt"
        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
        module_spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        assert module_spec is not None
        module = importlib.util.module_from_spec(module_spec)
        loader.exec_module(module)
        loop: SosLoop = module._sosfilt
        return loop
    except Exception:  # any change in scipy's layout: fall back to its public function
        return _public_sosfilt


def _public_sosfilt(sos: FloatArray, x: FloatArray, zi: FloatArray) -> None:
    from scipy import signal

    out, new_zi = signal.sosfilt(sos, x, axis=-1, zi=zi.transpose(1, 0, 2))
    x[...] = out
    zi[...] = new_zi.transpose(1, 0, 2)


class StreamFilter:
    """Apply ``sos`` to successive ``(n, channels)`` chunks of one stream."""

    def __init__(self, sos: FloatArray, n_channels: int, *, initial: FloatArray | None = None) -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        if initial is not None:
            # Start in steady state for a constant input (gravity on an accelerometer), not from zero.
            zi = steady_state(self.sos)[:, :, None] * initial[None, None, :]
        else:
            zi = np.zeros((sos.shape[0], 2, n_channels))
        # The loop's own layout (channels, sections, 2), as scipy.signal.sosfilt lays it out for axis=0.
        self._zi: FloatArray = np.ascontiguousarray(zi.transpose(2, 0, 1))
        self._loop = _sosfilt_loop()

    def __call__(self, chunk: FloatArray) -> FloatArray:
        """The filtered chunk, ``(n, channels)`` (a view of a channel-major array)."""
        return self.channel_major(chunk).T

    def channel_major(self, chunk: FloatArray) -> FloatArray:
        """The filtered chunk as ``(channels, n)``, C-contiguous."""
        x = np.array(chunk.T, dtype=np.float64, order="C")  # a copy: filtered in place
        if x.shape[1]:
            self._loop(self.sos, x, self._zi)
        return x


def _table_source() -> str:
    """The source of ``_designs.py``: scipy's designs at the sample rates devices and the simulator use."""
    emg_rates = [200.0, 250.0, 400.0, 500.0, 512.0, 600.0, 800.0, 1000.0, 1024.0, 1200.0, 1500.0, 2000.0, 2048.0]
    emg_rates += [2500.0, 4000.0]
    acc_rates = (25.0, 32.0, 50.0, 64.0, 100.0, 200.0)
    from scipy import signal

    def rows(a: FloatArray) -> str:
        return "(" + "".join("(" + ", ".join(repr(float(v)) for v in row) + "), " for row in a) + ")"

    lines = [
        '"""Filter coefficients scipy.signal designs (generated by ``filters.write_design_table()``).',
        "",
        "Bit for bit what ``design_emg_filter``, ``design_acc_filter`` and ``scipy.signal.sosfilt_zi`` return",
        '(tests/unit/test_filters.py), so that detection need not import scipy.signal; see filters.py."""',
        "",
        "Rows = tuple[tuple[float, ...], ...]",
        "",
        "EMG_SOS: dict[float, Rows] = {",
        *(f"    {r!r}: {rows(design_emg_filter(r))}," for r in emg_rates),
        "}",
        "ACC_SOS: dict[float, Rows] = {",
        *(f"    {r!r}: {rows(design_acc_filter(r))}," for r in acc_rates),
        "}",
        "ACC_ZI: dict[float, Rows] = {",
        *(f"    {r!r}: {rows(signal.sosfilt_zi(design_acc_filter(r)))}," for r in acc_rates),
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_design_table() -> Path:
    """Regenerate ``_designs.py`` (after a change to the filter design or for another sample rate)."""
    path = Path(__file__).with_name("_designs.py")
    path.write_text(_table_source())
    return path
