"""Detection filters without importing scipy.signal: the tabled designs and the directly loaded sosfilt
loop give exactly what scipy.signal gives (the chunked filter is also what makes live equal offline)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from detector.features import filters
from detector.features._designs import ACC_SOS, ACC_ZI, EMG_SOS
from detector.features.filters import StreamFilter, acc_filter, design_acc_filter, design_emg_filter, emg_filter


def test_tabled_designs_are_scipys_bit_for_bit() -> None:
    for rate, sos in EMG_SOS.items():
        assert np.array_equal(np.array(sos), design_emg_filter(rate)), rate
    for rate, sos in ACC_SOS.items():
        assert np.array_equal(np.array(sos), design_acc_filter(rate)), rate
        assert np.array_equal(np.array(ACC_ZI[rate]), signal.sosfilt_zi(design_acc_filter(rate))), rate


def test_other_rates_are_designed_by_scipy() -> None:
    assert 777.0 not in EMG_SOS and 33.0 not in ACC_SOS
    assert np.array_equal(emg_filter(777.0), design_emg_filter(777.0))
    assert np.array_equal(acc_filter(33.0), design_acc_filter(33.0))


@pytest.mark.parametrize("loop", ["direct", "public"])
@pytest.mark.parametrize(("rate", "channels", "initial"), [(1000.0, 2, False), (777.0, 3, False), (50.0, 3, True)])
def test_stream_filter_equals_scipy_sosfilt_in_any_chunks(
    loop: str, rate: float, channels: int, initial: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if loop == "public":
        monkeypatch.setattr(filters, "_sosfilt_loop", lambda: filters._public_sosfilt)
    else:
        assert filters._sosfilt_loop() is not filters._public_sosfilt  # the fast path really loaded
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5000, channels)) * 50 + 1.0
    sos = acc_filter(rate) if initial else emg_filter(rate)
    zi = signal.sosfilt_zi(sos)[:, :, None] * x[0][None, None, :] if initial else np.zeros((sos.shape[0], 2, channels))
    expected, _ = signal.sosfilt(sos, x, axis=0, zi=zi)
    f = StreamFilter(sos, channels, initial=x[0] if initial else None)
    cuts = [0, 1, 17, 1000, 1000, 4321, 5000]
    got = np.concatenate([f(x[a:b]) for a, b in itertools.pairwise(cuts)])
    assert np.array_equal(got, expected)


def test_detection_does_not_import_scipy_signal(tmp_path: Path) -> None:
    """scipy.signal costs ~0.9 s of CPU to import; detecting on a recording at a tabled rate never needs it."""
    from crampwatch.formats.edf import write_edf
    from crampwatch.simulate import Night, SimParams

    edf = tmp_path / "n.edf"
    write_edf(Night(120.0, 1, params=SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0)).recording(), edf)
    script = (
        "import sys\nfrom crampwatch.formats import open_recording\nfrom detector.offline import run_recording\n"
        "from detector.model import load_model\n"
        f"with open_recording({str(edf)!r}) as rec:\n    run_recording(rec, load_model())\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('scipy'))))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "scipy.signal" not in done.stdout.split() and "scipy.stats" not in done.stdout.split()


def test_scipy_signal_still_imports_and_filters_after_the_direct_load() -> None:
    """The directly loaded loop is a second copy of scipy's extension; scipy.signal loads its own after it."""
    script = (
        "import numpy as np\nfrom detector.features import filters\n"
        "assert filters._sosfilt_loop() is not filters._public_sosfilt\n"
        "from scipy import signal\n"
        "sos = filters.emg_filter(1000.0); x = np.random.default_rng(0).normal(size=(2, 3000))\n"
        "print(np.array_equal(signal.sosfilt(sos, x, axis=-1), filters.StreamFilter(sos, 2)(x.T).T))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True"]
