"""Tests of the overnight EMG + ACC simulator (crampwatch.simulate)."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal as sps

from crampwatch.frames import StreamKind
from crampwatch.simulate import HELDOUT_RANGES, TRAIN_RANGES, Night, SimParams, simulate

F64 = npt.NDArray[np.float64]
QUIET = SimParams(mains_uv=0.0, ecg_uv=0.0)
CLONUS_ONLY = SimParams(mains_uv=0.0, ecg_uv=0.0, spasm_mix=(0.0, 1.0, 0.0, 0.0, 0.0))


def envelope_peak_hz(x: F64, fs: float, lo: float = 0.7, hi: float = 12.0) -> float:
    """Frequency of the largest peak of the EMG amplitude-envelope spectrum within [lo, hi] Hz."""
    bp = sps.butter(4, [20.0, min(450.0, 0.45 * fs)], "bandpass", fs=fs, output="sos")
    env = sps.sosfiltfilt(sps.butter(4, 20.0, fs=fs, output="sos"), np.abs(sps.sosfiltfilt(bp, x)))
    q = int(fs // 100)
    env = env[::q]
    f, pxx = sps.welch(env - env.mean(), fs=fs / q, nperseg=min(env.size, 2048))
    band = (f >= lo) & (f <= hi)
    return float(f[band][np.argmax(pxx[band])])


def test_determinism() -> None:
    a = Night(120.0, 11, event_density=3.0)
    b = Night(120.0, 11, event_density=3.0)
    assert a.params == b.params
    assert a.annotations == b.annotations
    ea, aa = a.render(0.0, 120.0)
    eb, ab = b.render(0.0, 120.0)
    assert np.array_equal(ea, eb) and np.array_equal(aa, ab)
    c = Night(120.0, 12, event_density=3.0)
    assert not np.array_equal(c.render(0.0, 10.0)[1], aa[: c.render(0.0, 10.0)[1].shape[0]])


@pytest.mark.parametrize(
    "params",
    [
        SimParams(),
        SimParams(emg_rate_hz=512.0, acc_rate_hz=32.0, gain=2.5, n_emg_channels=3),
        SimParams(emg_rate_hz=200.0, acc_rate_hz=25.0),
    ],
)
def test_chunk_invariance(params: SimParams) -> None:
    night = Night(300.0, 3, params, event_density=3.0)
    whole_e, whole_a = night.render(0.0, 300.0)
    fresh = Night(300.0, 3, params, event_density=3.0)  # empty caches, other chunk order
    cuts = [0.0, 17.3337, 17.3341, 59.999, 123.4567, 200.0001, 250.5, 300.0]
    spans = list(itertools.pairwise(cuts))
    rendered = {span: fresh.render(*span) for span in reversed(spans)}
    parts = [rendered[span] for span in spans]
    assert np.array_equal(np.vstack([p[0] for p in parts]), whole_e)
    assert np.array_equal(np.vstack([p[1] for p in parts]), whole_a)
    assert whole_e.shape == (int(np.ceil(300.0 * params.emg_rate_hz)), params.n_emg_channels)
    assert whole_a.shape == (int(np.ceil(300.0 * params.acc_rate_hz)), 3)


def test_render_index_rule() -> None:
    night = Night(30.0, 1, SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0))
    emg, acc = night.render(1.0005, 2.0)
    assert emg.shape[0] == 2000 - 1001
    assert acc.shape[0] == 100 - 51


@pytest.mark.parametrize(("gain", "floor"), [(1.0, 2.5), (1.7, 6.0), (0.5, 1.5)])
def test_rest_rms_matches_floor(gain: float, floor: float) -> None:
    p = SimParams(gain=gain, noise_floor_uv=floor, mains_uv=0.0, ecg_uv=0.0, adc_resolution_uv=0.05)
    night = Night(600.0, 21, p, event_density=0.0)
    assert night.annotations == ()
    emg, _ = night.render(100.0, 160.0)
    rms = np.sqrt(np.mean(emg**2, axis=0))
    assert np.all(rms > 0.5 * floor * gain) and np.all(rms < 2.0 * floor * gain), rms


def test_acc_magnitude_at_rest() -> None:
    night = Night(600.0, 5, QUIET, event_density=0.0)
    _, acc = night.render(0.0, 600.0)
    mag = np.linalg.norm(acc, axis=1)
    assert abs(float(np.median(mag)) - 1.0) < 0.01
    assert float(np.std(mag)) < 0.005


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_short_dense_night_has_cramp_and_spasm(seed: int) -> None:
    night = Night(600.0, seed, event_density=3.0)
    kinds = {a.type for a in night.annotations}
    assert {"cramp", "spasm"} <= kinds


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_annotations_well_formed(seed: int) -> None:
    night = Night(4 * 3600.0, seed, event_density=4.0)
    ann = night.annotations
    assert ann
    assert list(ann) == sorted(ann, key=lambda a: a.onset_s)
    for a in ann:
        assert 0.0 <= a.onset_s < a.offset_s <= night.duration_s
    scored = sorted((a for a in ann if a.type in ("cramp", "spasm", "plm")), key=lambda a: a.onset_s)
    for a, b in itertools.pairwise(scored):
        assert a.offset_s <= b.onset_s
    for a in ann:
        if a.type == "spasm":
            assert a.subtype in ("tonic", "clonus", "flexor", "extensor", "myoclonic")
        if a.type == "plm":
            assert 0.5 <= a.duration_s <= 10.0
    # the pain wakes the sleeper during the cramp (or at its end), and the wake outlasts it
    cramps = [a for a in ann if a.type == "cramp"]
    for w in (a for a in ann if a.type == "wake"):
        assert any(c.onset_s <= w.onset_s <= c.offset_s < w.offset_s for c in cramps)


def test_cramp_amplitude_and_modulation() -> None:
    night = Night(600.0, 2, QUIET, event_density=3.0)
    cramp = next(a for a in night.annotations if a.type == "cramp")
    emg, _ = night.render(cramp.onset_s, cramp.offset_s)
    rms = np.sqrt(np.mean(emg**2, axis=0))
    assert 30.0 < rms[0] < 1500.0
    assert 0.05 * rms[0] < rms[1] < 0.3 * rms[0]  # crosstalk into the tibialis channel
    assert rms[0] > 5 * QUIET.noise_floor_uv * QUIET.gain
    mid, _ = night.render(cramp.onset_s + 3.0, cramp.offset_s - 3.0)
    assert 1.0 <= envelope_peak_hz(mid[:, 0], 1000.0) <= 2.0


@pytest.mark.parametrize("seed", [1, 2])
def test_clonus_envelope_frequency(seed: int) -> None:
    night = Night(600.0, seed, CLONUS_ONLY, event_density=3.0)
    sp = next(a for a in night.annotations if a.type == "spasm")
    assert sp.subtype == "clonus"
    emg, acc = night.render(sp.onset_s, sp.offset_s)
    assert 4.7 <= envelope_peak_hz(emg[:, 0], 1000.0, 2.0, 12.0) <= 7.0
    f, pxx = sps.welch(acc - acc.mean(axis=0), fs=50.0, nperseg=min(acc.shape[0], 128), axis=0)
    peak = f[np.argmax(pxx.sum(axis=1))]
    assert 4.0 <= peak <= 7.5


def test_ranges_differ() -> None:
    rng = np.random.default_rng(0)
    train = [TRAIN_RANGES.sample(rng) for _ in range(200)]
    held = [HELDOUT_RANGES.sample(rng) for _ in range(200)]
    assert {p.emg_rate_hz for p in train} == set(TRAIN_RANGES.emg_rates_hz)
    assert {p.emg_rate_hz for p in held} == {250.0, 512.0, 800.0, 1500.0}
    assert not {p.emg_rate_hz for p in train} & {p.emg_rate_hz for p in held}
    assert {p.acc_rate_hz for p in train} == {25.0, 50.0, 100.0}
    assert {p.acc_rate_hz for p in held} == {32.0, 64.0}
    assert all(0.3 <= p.gain <= 3.5 for p in train)
    assert all(p.gain <= 0.3 or p.gain >= 3.5 for p in held)
    assert any(p.real_floor for p in train) and not any(p.real_floor for p in held)
    assert Night(10.0, 3).params == TRAIN_RANGES.sample(np.random.default_rng(3))


def test_simulate_recording() -> None:
    rec = simulate(120.0, 4, SimParams(emg_rate_hz=500.0, acc_rate_hz=25.0), event_density=3.0)
    assert rec.emg.kind is StreamKind.EMG and rec.emg.channel_names == ("calf", "tibialis")
    assert rec.acc is not None and rec.acc.channel_names == ("x", "y", "z")
    assert rec.emg.data.shape == (60000, 2) and rec.acc.data.shape == (3000, 3)
    assert rec.duration_s == pytest.approx(120.0)
    assert (
        rec.annotations
        == Night(120.0, 4, SimParams(emg_rate_hz=500.0, acc_rate_hz=25.0), event_density=3.0).annotations
    )
    res = 0.1
    assert np.allclose(rec.emg.data / res, np.round(rec.emg.data / res), atol=1e-6)


def test_all_event_types_planned() -> None:
    night = Night(8 * 3600.0, 4, event_density=8.0)
    kinds = {a.type for a in night.annotations}
    assert kinds == {
        "cramp",
        "precursor",
        "wake",
        "residual",
        "leg_movement",
        "spasm",
        "plm",
        "turn",
        "voluntary",
        "fasciculation",
        "artifact",
        "pop",
        "lead_off",
    }
    subtypes = {a.subtype for a in night.annotations if a.type == "spasm"}
    assert subtypes == {"tonic", "clonus", "flexor", "extensor", "myoclonic"}
    plm = [a for a in night.annotations if a.type == "plm"]
    assert len(plm) >= 4


def test_lead_off_and_pop() -> None:
    p = SimParams(mains_uv=0.0, ecg_uv=0.0)
    night = Night(8 * 3600.0, 2, p, event_density=8.0)
    lead = next(a for a in night.annotations if a.type == "lead_off")
    emg, _ = night.render(lead.onset_s + 0.1, lead.offset_s - 0.1)
    flat = [c for c in range(emg.shape[1]) if np.ptp(emg[:, c]) == 0.0]
    assert len(flat) == 1 and abs(emg[0, flat[0]]) in (0.0, p.rail_uv)
    pop = next(a for a in night.annotations if a.type == "pop")
    emg, _ = night.render(pop.onset_s, pop.offset_s)
    peak = np.abs(emg).max(axis=0)
    assert peak.max() >= 0.1 * 1000 * 0.9
    c = int(np.argmax(peak))
    assert abs(emg[-1, c]) < 0.2 * abs(emg[0, c])


def test_single_channel_and_quiet_night() -> None:
    night = Night(60.0, 8, SimParams(n_emg_channels=1), event_density=3.0)
    emg, acc = night.render(0.0, 60.0)
    assert emg.shape == (60000, 1) and acc.shape == (3000, 3)
    assert Night(600.0, 8, event_density=0.0).annotations == ()
