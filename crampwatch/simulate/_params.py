"""Simulation parameters: one simulated person + sensor + night, and the ranges they are drawn from.

Defaults follow ``shared/reference/physiology.md`` §1 and §7: rest floor 1-5 µV (UCI median 2.4 µV), mains
1-100 µV at 50/60 Hz, ECG bleed 5-50 µV at 50-80 bpm, ACC noise 1-2 mg SD (UCI), 1 kHz EMG (SPEAC norm;
PSG often 200 Hz). Event rates per night follow §1-§6 (0-3 cramps, 1.6 posture shifts/h, ...).

``TRAIN_RANGES`` spans the devices we expect; ``HELDOUT_RANGES`` lies deliberately *outside* them
(other sample rates, gains and noise levels) so a model can be tested on sensors it never saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SimParams:
    """One simulated person, sensor and night. All amplitudes are input-referred (before ``gain``)."""

    emg_rate_hz: float = 1000.0
    acc_rate_hz: float = 50.0
    gain: float = 1.0
    noise_floor_uv: float = 2.5
    mains_hz: float = 50.0
    mains_uv: float = 3.0
    ecg_uv: float = 10.0
    ecg_bpm: float = 65.0
    adc_resolution_uv: float = 0.1
    acc_noise_g: float = 0.0015
    n_emg_channels: int = 2
    #: ADC rail (output-referred, µV); everything is clipped to ±rail, lead-off may sit on it.
    rail_uv: float = 10000.0
    #: Share of the rest noise in the 1/f (< 20 Hz) component (RMS ratio to the white part).
    lf_noise_ratio: float = 0.3
    # Event rates (events per hour, before ``event_density``).
    cramp_per_h: float = 1.0 / 8.0
    spasm_per_h: float = 2.0 / 8.0
    plm_series_per_h: float = 1.0 / 8.0
    turn_per_h: float = 1.6
    voluntary_per_h: float = 0.5
    artifact_per_h: float = 0.5
    pop_per_h: float = 0.4
    fasciculation_per_h: float = 0.3
    lead_off_per_h: float = 0.1
    #: Probability that a cramp is preceded by a precursor (rising tone 20-60 s, 2-6x floor).
    precursor_prob: float = 0.6
    #: Multiplies every drawn cramp amplitude (50-1000 µV RMS at the calf).
    cramp_amp_scale: float = 1.0
    #: Multiplies every drawn spasm amplitude (20-500 µV RMS).
    spasm_amp_scale: float = 1.0
    #: Relative weights of spasm subtypes: tonic, clonus, flexor, extensor, myoclonic.
    spasm_mix: tuple[float, float, float, float, float] = (0.3, 0.2, 0.2, 0.15, 0.15)

    def __post_init__(self) -> None:
        if not (self.emg_rate_hz > 0 and self.acc_rate_hz > 0):
            raise ValueError("sample rates must be positive")
        if self.n_emg_channels < 1:
            raise ValueError("need at least one EMG channel")
        if not self.adc_resolution_uv > 0:
            raise ValueError("adc_resolution_uv must be positive")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@dataclass(frozen=True)
class ParamRanges:
    """Where :meth:`sample` draws a :class:`SimParams` from.

    Intervals are ``(lo, hi)``; ``gain_bands`` is a set of intervals, one picked at random (weighted by
    log-width) then log-uniform inside. Noise floor is log-uniform in ``floor_uv`` and, with probability
    ``noisy_prob``, log-uniform up to ``noisy_floor_max_uv`` instead.
    """

    emg_rates_hz: tuple[float, ...]
    acc_rates_hz: tuple[float, ...]
    gain_bands: tuple[tuple[float, float], ...]
    floor_uv: tuple[float, float]
    noisy_prob: float
    noisy_floor_max_uv: float
    mains_freqs_hz: tuple[float, ...]
    mains_uv: tuple[float, float]
    ecg_uv: tuple[float, float]
    ecg_bpm: tuple[float, float]
    adc_resolutions_uv: tuple[float, ...]
    acc_noise_g: tuple[float, float]
    cramp_amp_scale: tuple[float, float] = (1.0, 1.0)
    #: EMG channel counts to draw from: the sensor's layout varies (1-channel DIY boards, 4-channel Ganglion).
    emg_channel_counts: tuple[int, ...] = (2,)

    def sample(self, rng: np.random.Generator) -> SimParams:
        widths = np.array([math.log(hi / lo) for lo, hi in self.gain_bands])
        band = self.gain_bands[int(rng.choice(len(self.gain_bands), p=widths / widths.sum()))]
        floor = _log_uniform(rng, *self.floor_uv)
        if rng.random() < self.noisy_prob:
            floor = _log_uniform(rng, self.floor_uv[1], self.noisy_floor_max_uv)
        return SimParams(
            emg_rate_hz=float(rng.choice(self.emg_rates_hz)),
            acc_rate_hz=float(rng.choice(self.acc_rates_hz)),
            gain=_log_uniform(rng, *band),
            noise_floor_uv=floor,
            mains_hz=float(rng.choice(self.mains_freqs_hz)),
            mains_uv=float(rng.uniform(*self.mains_uv)),
            ecg_uv=float(rng.uniform(*self.ecg_uv)),
            ecg_bpm=float(rng.uniform(*self.ecg_bpm)),
            adc_resolution_uv=float(rng.choice(self.adc_resolutions_uv)),
            acc_noise_g=float(rng.uniform(*self.acc_noise_g)),
            cramp_amp_scale=_log_uniform(rng, *self.cramp_amp_scale),
            n_emg_channels=int(rng.choice(self.emg_channel_counts)),
        )


TRAIN_RANGES = ParamRanges(
    emg_rates_hz=(200.0, 500.0, 1000.0, 2000.0),
    acc_rates_hz=(25.0, 50.0, 100.0),
    gain_bands=((0.5, 2.0),),
    floor_uv=(1.0, 8.0),
    noisy_prob=0.1,
    noisy_floor_max_uv=20.0,
    mains_freqs_hz=(50.0, 60.0),
    mains_uv=(0.0, 30.0),
    ecg_uv=(0.0, 30.0),
    ecg_bpm=(50.0, 80.0),
    adc_resolutions_uv=(0.05, 0.1, 0.5, 0.8),
    acc_noise_g=(0.001, 0.002),
    cramp_amp_scale=(1.0, 1.0),
    emg_channel_counts=(1, 2, 2, 3),
)

HELDOUT_RANGES = ParamRanges(
    emg_rates_hz=(250.0, 512.0, 800.0, 1500.0),
    acc_rates_hz=(32.0, 64.0),
    gain_bands=((0.3, 0.5), (2.0, 3.0)),
    floor_uv=(1.0, 30.0),
    noisy_prob=0.0,
    noisy_floor_max_uv=30.0,
    mains_freqs_hz=(50.0, 60.0),
    mains_uv=(0.0, 100.0),
    ecg_uv=(0.0, 50.0),
    ecg_bpm=(45.0, 90.0),
    adc_resolutions_uv=(0.2, 1.0),
    acc_noise_g=(0.0005, 0.004),
    cramp_amp_scale=(0.6, 1.6),
    emg_channel_counts=(1, 2, 4),
)
