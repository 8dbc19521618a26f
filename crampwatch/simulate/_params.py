"""Simulation parameters: one simulated person + sensor + night, and the ranges they are drawn from.

Defaults follow ``shared/reference/physiology.md`` §1 and §7: rest floor 1-5 µV (UCI median 2.4 µV), mains
1-100 µV at 50/60 Hz, ECG bleed 5-50 µV at 50-80 bpm, ACC noise 1-2 mg SD (UCI), 1 kHz EMG (SPEAC norm;
PSG often 200 Hz). Event rates per night follow §1-§6 (0-3 cramps, 1.6 posture shifts/h, ...).

How events unfold (cramp length, waking and rubbing during the cramp, relief dips, offset style, off-site
cramps, spasm lengths and rises, rubbing artefact) is an :class:`EventRanges`: the physiological ranges
of physiology.md are its defaults (and ``HELDOUT_RANGES``'); ``TRAIN_EVENTS`` draws from wider ones, so a
model never meets a night outside what it was trained on.

``TRAIN_RANGES`` spans every device we expect and more (EMG 200-2500 Hz, gain x0.3-x3.5, floors 0.5-40
µV, mains up to 120 µV, a share of nights on *real* resting EMG); ``HELDOUT_RANGES`` lies deliberately
*outside* its sensor ranges (other sample rates, gains beyond x0.3-x3.5, 4 channels) so a model can be
tested on sensors it never saw. Event behaviour cannot be both wider in training and outside it, so the
held-out nights draw their events from the physiological (narrower) defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EventRanges:
    """How the planted events unfold; every interval is ``(lo, hi)``, drawn per event.

    Defaults are physiology.md's numbers (events.md's definitions): cramps 30 s-10 min, the pain wakes
    the sleeper within seconds to tens of seconds *during* the cramp (sit up or bend the knee, rub the
    calf with electrode-motion artefact, try to stretch) while the discharge goes on, partial relief dips
    of a few seconds, an abrupt stretch offset (0.2-1 s) or a 5-15 s fade, low residual tone after it;
    spasms 20-500 µV with fast rises and posture changes.
    """

    cramp_dur_s: tuple[float, float] = (30.0, 600.0)  # log-uniform
    cramp_rise_s: tuple[float, float] = (0.5, 3.0)
    #: Probability the sleeper wakes while the cramp goes on (else sleeps through it, waking at the end).
    wake_in_cramp_prob: float = 0.85
    wake_delay_s: tuple[float, float] = (3.0, 60.0)  # after the cramp onset, log-uniform
    #: Wake behaviour after the offset (rub a little more, maybe walk, lie down).
    wake_after_s: tuple[float, float] = (20.0, 150.0)
    knee_bend_prob: float = 0.3  # bends the knee instead of sitting up
    rub_bout_s: tuple[float, float] = (4.0, 25.0)
    rub_hz: tuple[float, float] = (1.0, 3.0)
    rub_acc_g: tuple[float, float] = (0.05, 0.3)
    #: Electrode-motion artefact while rubbing (µV, < 20 Hz, log-uniform); physiology.md: 50 µV-5 mV.
    rub_artefact_uv: tuple[float, float] = (20.0, 500.0)
    dip_prob: float = 0.4
    dip_s: tuple[float, float] = (2.0, 6.0)
    #: Level left during a relief dip, as a share of the cramp level.
    dip_depth: tuple[float, float] = (0.1, 0.5)
    fade_prob: float = 0.3
    fade_s: tuple[float, float] = (5.0, 15.0)
    stretch_fall_s: tuple[float, float] = (0.2, 1.0)
    #: Off-site cramps (electrode over the silent head): RMS a few times the floor instead of 50-1000 µV.
    offsite_prob: float = 0.0
    offsite_x_floor: tuple[float, float] = (3.0, 8.0)
    residual_prob: float = 0.6
    residual_x_floor: tuple[float, float] = (1.5, 2.5)
    residual_s: tuple[float, float] = (20.0, 60.0)
    spasm_uv: tuple[float, float] = (20.0, 500.0)  # log-uniform
    spasm_rise_s: tuple[float, float] = (0.1, 0.4)
    tonic_s: tuple[float, float] = (1.0, 60.0)
    clonus_s: tuple[float, float] = (3.0, 60.0)
    kick_s: tuple[float, float] = (1.0, 15.0)  # flexor / extensor EMG duration, log-uniform
    myoclonic_jerks: tuple[int, int] = (3, 10)
    #: Share of tonic spasms that come with a posture change (the leg shifts and stays).
    tonic_move_prob: float = 0.4
    #: Isolated (non-periodic) leg movements per hour, labelled ``leg_movement``.
    lm_per_h: float = 2.0
    #: The shank during a cramp (from its onset) and a tonic spasm: physiology.md §1 gives only upper bounds
    #: for a cramp (tilt < 10 deg, tremor < 0.05 g) and no ACC signature for a tonic spasm (a co-contraction
    #: stiffens the ankle rather than moving it). ``still_prob``: the share of them with a shank that does
    #: not move at all (no tilt, no tremor), drawn apart from every other draw so the rest of a night is
    #: the same whatever it is.
    cramp_tilt_deg: tuple[float, float] = (1.0, 8.0)
    cramp_tremor_g: tuple[float, float] = (0.003, 0.03)
    tonic_tremor_g: tuple[float, float] = (0.005, 0.03)
    still_prob: float = 0.0


TRAIN_EVENTS = EventRanges(
    cramp_dur_s=(10.0, 600.0),
    cramp_rise_s=(0.2, 4.0),
    wake_in_cramp_prob=0.85,
    wake_delay_s=(1.0, 90.0),
    wake_after_s=(5.0, 180.0),
    knee_bend_prob=0.4,
    rub_bout_s=(2.0, 40.0),
    rub_hz=(0.5, 4.0),
    rub_acc_g=(0.02, 0.5),
    rub_artefact_uv=(5.0, 3000.0),
    dip_prob=0.5,
    dip_s=(1.5, 10.0),
    dip_depth=(0.02, 0.7),
    fade_prob=0.4,
    fade_s=(3.0, 25.0),
    stretch_fall_s=(0.1, 1.5),
    offsite_prob=0.2,
    offsite_x_floor=(2.0, 10.0),
    residual_prob=0.6,
    residual_x_floor=(1.2, 4.0),
    residual_s=(10.0, 90.0),
    spasm_uv=(12.0, 700.0),
    spasm_rise_s=(0.05, 0.8),
    tonic_s=(0.7, 120.0),
    clonus_s=(2.0, 90.0),
    kick_s=(0.5, 20.0),
    myoclonic_jerks=(2, 15),
    tonic_move_prob=0.5,
    lm_per_h=4.0,
    # The model trained without this called a cramp or tonic spasm on a perfectly still shank "other": the
    # training world always added tremor, so a still shank had come to mean "not involuntary".
    cramp_tilt_deg=(0.0, 10.0),
    cramp_tremor_g=(0.0, 0.05),
    tonic_tremor_g=(0.0, 0.05),
    still_prob=0.3,
)


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
    #: How events unfold (physiological defaults; training draws from :data:`TRAIN_EVENTS`).
    events: EventRanges = EventRanges()
    #: The EMG floor is real resting sEMG (UCI lower-limb, read at run time, see ``_real``) scaled to
    #: ``noise_floor_uv``, instead of synthetic white + 1/f noise.
    real_floor: bool = False
    #: Stretches of real voluntary leg EMG (UCI lower-limb) spliced into the night, per hour.
    real_voluntary_per_h: float = 0.0

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
    events: EventRanges = EventRanges()
    #: Share of nights whose floor is real resting EMG (when the real recordings are on this machine).
    real_floor_prob: float = 0.0
    real_voluntary_per_h: float = 0.0

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
            events=self.events,
            # drawn last, so nights of ranges without real data keep their earlier draws
            real_floor=bool(rng.random() < self.real_floor_prob) if self.real_floor_prob > 0 else False,
            real_voluntary_per_h=self.real_voluntary_per_h,
        )


TRAIN_RANGES = ParamRanges(
    # 200 Hz PSG amplifiers, and 400-2500 Hz around every wearable rate (the held-out ones lie between)
    emg_rates_hz=(200.0, 400.0, 500.0, 600.0, 1000.0, 1024.0, 1200.0, 2000.0, 2048.0, 2500.0),
    acc_rates_hz=(25.0, 50.0, 100.0),
    gain_bands=((0.3, 3.5),),
    floor_uv=(0.5, 10.0),
    noisy_prob=0.15,
    noisy_floor_max_uv=40.0,
    mains_freqs_hz=(50.0, 60.0),
    mains_uv=(0.0, 120.0),
    ecg_uv=(0.0, 60.0),
    ecg_bpm=(40.0, 100.0),
    adc_resolutions_uv=(0.05, 0.1, 0.5, 0.8),
    acc_noise_g=(0.0005, 0.005),
    cramp_amp_scale=(0.4, 2.0),
    emg_channel_counts=(1, 2, 2, 3),
    events=TRAIN_EVENTS,
    real_floor_prob=0.35,
    real_voluntary_per_h=3.0,
)

HELDOUT_RANGES = ParamRanges(
    emg_rates_hz=(250.0, 512.0, 800.0, 1500.0),
    acc_rates_hz=(32.0, 64.0),
    # beyond training's x0.3-x3.5 on both sides
    gain_bands=((0.2, 0.3), (3.5, 4.5)),
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
