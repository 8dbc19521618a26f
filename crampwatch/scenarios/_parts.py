"""The building blocks of a scenario: events, look-alikes and wake behaviour, each drawn onto a canvas.

Every part is a frozen dataclass whose times are fixed by the scenario (so the truth is exact) and whose
texture (noise, modulation phase, spectrum, jitter) comes from the canvas's seeded generator. Amplitudes
are physiological µV RMS *before* the recording's gain; the canvas multiplies by the gain, as an
amplifier would. Numbers cite ``shared/reference/physiology.md`` (§ and table row); (g) marks that
table's engineering guesses.

EMG channel 0 is the calf (gastrocnemius), channel 1 the tibialis anterior (TA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ..recording import Annotation
from ._signals import (
    SUPINE,
    band_noise,
    lowpass_noise,
    plateau,
    pulse_train,
    random_axis,
    smoothstep,
    tilted,
)

FloatArray = npt.NDArray[np.float64]
Vec = tuple[float, float, float]

CALF: Final = 0
TA: Final = 1

#: Spasm subtypes (events.md "spasm" row; physiology.md §3).
SPASM_SUBTYPES: Final = ("tonic", "clonus", "flexor", "extensor", "myoclonic")
#: Scored types (events.md) and the context annotations this suite adds (not scored).
EVENT_TYPES: Final = ("cramp", "spasm", "plm")
CONTEXT_TYPES: Final = ("precursor", "residual", "wake", "voluntary", "turn", "artifact")


class Canvas:
    """The mutable scratch space one scenario is drawn on (private to the builder)."""

    def __init__(
        self,
        duration_s: float,
        emg_rate_hz: float,
        acc_rate_hz: float,
        gain: float,
        floors_uv: tuple[float, float],
        rng: np.random.Generator,
    ) -> None:
        self.duration_s = duration_s
        self.emg_rate = emg_rate_hz
        self.acc_rate = acc_rate_hz
        self.gain = gain
        self.floors_uv = floors_uv  # measured floor of each channel's real background, after gain
        self.rng = rng
        n_emg = round(duration_s * emg_rate_hz)
        n_acc = round(duration_s * acc_rate_hz)
        self.emg = np.zeros((n_emg, 2))
        self.acc_motion = np.zeros((n_acc, 3))
        self.postures: list[tuple[float, float, Vec]] = [(0.0, 0.0, SUPINE)]
        self.annotations: list[Annotation] = []

    @property
    def posture_now(self) -> Vec:
        return self.postures[-1][2]

    def _span(self, rate: float, n: int, start_s: float, stop_s: float) -> tuple[int, int, FloatArray]:
        a = max(0, int(np.floor(start_s * rate)))
        b = min(n, int(np.ceil(stop_s * rate)))
        return a, b, np.arange(a, b) / rate

    def add_emg(
        self,
        channel: int,
        start_s: float,
        stop_s: float,
        envelope: Callable[[FloatArray], FloatArray],
        median_hz: float,
        *,
        drift: float = 0.0,
    ) -> None:
        """Band-limited noise x ``envelope(t)`` (µV RMS, before gain) on ``[start_s, stop_s)``.

        ``drift`` > 0 lowers the median frequency by that fraction from start to stop (cramp spectra
        drift down 5-20 %, physiology.md §1 (g)), by cross-fading two noise bands at constant power.
        """
        a, b, t = self._span(self.emg_rate, len(self.emg), start_s, stop_s)
        if b <= a:
            return
        noise = band_noise(b - a, self.emg_rate, median_hz, self.rng)
        if drift > 0:
            w = np.linspace(0.0, 1.0, b - a)
            low = band_noise(b - a, self.emg_rate, median_hz * (1 - drift), self.rng)
            noise = np.sqrt(1 - w) * noise + np.sqrt(w) * low
        self.emg[a:b, channel] += self.gain * envelope(t) * noise

    def add_artefact(
        self, channel: int, start_s: float, stop_s: float, envelope: Callable[[FloatArray], FloatArray]
    ) -> None:
        """Electrode-motion artefact: < 20 Hz noise x ``envelope`` (µV, not scaled by muscle gain)."""
        a, b, t = self._span(self.emg_rate, len(self.emg), start_s, stop_s)
        if b > a:
            self.emg[a:b, channel] += envelope(t) * lowpass_noise(b - a, self.emg_rate, 20.0, self.rng)

    def add_motion(self, start_s: float, stop_s: float, motion: Callable[[FloatArray], FloatArray]) -> None:
        """ACC motion (n, 3) in g added on top of gravity."""
        a, b, t = self._span(self.acc_rate, len(self.acc_motion), start_s, stop_s)
        if b > a:
            self.acc_motion[a:b] += motion(t)

    def move_to(self, start_s: float, transition_s: float, vector: Vec) -> None:
        self.postures.append((start_s, transition_s, vector))

    def jerk(self, at_s: float, peak_g: float, width_s: float = 0.15) -> None:
        """A transient along a random axis: a Gaussian pulse of ``peak_g`` and ``width_s`` SD-ish width."""
        axis = self.rng.choice([-1.0, 1.0]) * random_axis(self.rng)
        self.add_motion(
            at_s - 4 * width_s,
            at_s + 4 * width_s,
            lambda t: peak_g * np.exp(-0.5 * ((t - at_s) / width_s) ** 2)[:, None] * axis[None, :],
        )

    def oscillate(self, start_s: float, stop_s: float, hz: float, amp_g: float, ramp_s: float = 0.3) -> None:
        """Sinusoidal shaking (rubbing, clonus, steps) along a random axis, ``amp_g`` peak."""
        axis = random_axis(self.rng)
        phase = self.rng.uniform(0, 2 * np.pi)
        self.add_motion(
            start_s,
            stop_s,
            lambda t: (
                (amp_g * plateau(t, start_s, stop_s, ramp_s, ramp_s) * np.sin(2 * np.pi * hz * t + phase))[:, None]
                * axis[None, :]
            ),
        )

    def note(self, type_: str, onset_s: float, offset_s: float, subtype: str = "") -> None:
        self.annotations.append(Annotation(type_, float(onset_s), float(offset_s), subtype))


class Part(Protocol):
    def draw(self, canvas: Canvas) -> None: ...


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


Envelope = Callable[[FloatArray], FloatArray]


def _bump(level: float, start: float, stop: float, rise: float, fall: float) -> Envelope:
    """``level`` x a plateau from ``start`` to ``stop`` (a closure that binds its arguments now)."""
    return lambda t: level * plateau(t, start, stop, rise, fall)


def _pulses(level: float, start: float, stop: float, rate_hz: float, width_s: float) -> Envelope:
    return lambda t: level * pulse_train(t, start, stop, rate_hz, width_s)


# --------------------------------------------------------------------------------------------- cramp


@dataclass(frozen=True, slots=True)
class Cramp:
    """A calf cramp: sustained discharge with 1.3-1.5 Hz waxing and waning, optional relief dips.

    ``level_uv`` is the plateau RMS (50-1000 µV, physiology.md §1 (g)); ``level_x_floor`` instead sets it
    relative to the calf's real floor after gain (an off-site electrode: weak surface signal, issue 14
    asks for >= 3x the floor; localisation per physiology.md §2, Ross & Thomas). Onset rise 0.5-3 s;
    ``end="stretch"``: a 1-3 s surge then an abrupt 0.2-1 s fall (§1, §2 Ross & Thomas); ``end="fade"``:
    a linear fade over ``fade_s`` (5-15 s, issue 14). ``dips``: (start after onset, length) of partial
    relief, 2-6 s (issue 14), down to 15-30 % of the level. The cramp's offset is where the envelope
    reaches zero. Precursor (2-6x floor for 20-60 s, §2 Chaney & Sherman) and residual activity (~2x
    floor, §2) are annotated separately and are not part of the cramp (events.md).
    """

    onset_s: float
    duration_s: float
    level_uv: float = 150.0
    level_x_floor: float | None = None
    rise_s: float = 1.5
    end: Literal["stretch", "fade"] = "stretch"
    fade_s: float = 10.0
    dips: tuple[tuple[float, float], ...] = ()
    precursor_s: float = 0.0
    residual_s: float = 0.0
    ta_share: float = 0.08  # cross-talk onto the tibialis electrode

    def draw(self, c: Canvas) -> None:
        rng = c.rng
        on, off = self.onset_s, self.onset_s + self.duration_s
        level = self.level_uv if self.level_x_floor is None else self.level_x_floor * c.floors_uv[CALF] / c.gain
        mod_hz = _u(rng, 1.3, 1.5)  # common modulation 1.4 ± 0.4 Hz (§2 Minetto 2009); 1.3-1.5 in §1
        depth = _u(rng, 0.2, 0.5)  # modulation depth 20-50 % (§1 (g))
        phase = _u(rng, 0, 2 * np.pi)
        median_hz = _u(rng, 70, 130)  # median freq 70-130 Hz (§1 (g))
        drift = _u(rng, 0.05, 0.2)  # drifting down 5-20 % (§1 (g))
        if self.end == "stretch":
            fall = _u(rng, 0.2, 1.0)  # abrupt offset 0.2-1 s after stretch (§1)
            surge_len = _u(rng, 1.0, 3.0)  # may follow a 1-3 s surge (§1)
            surge_gain = _u(rng, 0.3, 0.6)
        else:
            fall = self.fade_s
            surge_len, surge_gain = 0.0, 0.0
        dips = [(on + s, on + s + d, _u(rng, 0.15, 0.3)) for s, d in self.dips]

        def envelope(t: FloatArray) -> FloatArray:
            env = plateau(t, on, off, self.rise_s, 0.0)
            if self.end == "stretch":
                env = env * (1.0 - smoothstep(t, off - fall, fall))
                env = env * (1.0 + surge_gain * plateau(t, off - fall - surge_len, off, 0.3 * surge_len, 0.0))
            else:
                env = env * np.clip((off - t) / fall, 0.0, 1.0)
            for a, b, floor in dips:
                edge = min(0.5, 0.25 * (b - a))
                env = env * (1.0 - (1.0 - floor) * plateau(t, a, b, edge, edge))
            mod = 1.0 + depth * np.sin(2 * np.pi * mod_hz * (t - on) + phase)
            return np.asarray(level * env * mod, dtype=np.float64)

        c.add_emg(CALF, on, off, envelope, median_hz, drift=drift)
        c.add_emg(TA, on, off, lambda t: self.ta_share * envelope(t), median_hz)
        c.note("cramp", on, off)
        floor = c.floors_uv[CALF] / c.gain
        if self.precursor_s > 0:
            top = _u(rng, 2.0, 6.0)  # precursor up to 2-6x the floor (events.md; §2 +100..+500 %)
            start = on - self.precursor_s

            def rising(t: FloatArray) -> FloatArray:
                return np.asarray(floor * np.sqrt(np.maximum(top**2 * smoothstep(t, start, self.precursor_s) - 1, 0)))

            c.add_emg(CALF, start, on, rising, _u(rng, 70, 130))
            c.note("precursor", start, on)
        if self.residual_s > 0:
            lvl = floor * np.sqrt(_u(rng, 1.5, 2.5) ** 2 - 1)  # ~2x baseline afterwards (§2 Chaney & Sherman)
            c.add_emg(
                CALF, off, off + self.residual_s, lambda t: lvl * plateau(t, off, off + self.residual_s, 1.0, 3.0), 90.0
            )
            c.note("residual", off, off + self.residual_s)


# ------------------------------------------------------------------------------------- wake behaviour


@dataclass(frozen=True, slots=True)
class SitUp:
    """Wakes and sits up (or bends the knee): the shank tilts ``tilt_deg`` (45-90°, §1 cramp ACC column)
    over ``transition_s``; a short voluntary leg burst and a 0.1-0.3 g transient come with it. Lies
    back down at ``lie_down_s`` if given."""

    at_s: float
    tilt_deg: float = 60.0
    transition_s: float = 2.0
    lie_down_s: float | None = None
    kind: str = "sit_up"

    def draw(self, c: Canvas) -> None:
        before = c.posture_now
        c.move_to(self.at_s, self.transition_s, tilted(self.tilt_deg, before))
        c.jerk(self.at_s + 0.5 * self.transition_s, _u(c.rng, 0.1, 0.3))
        lvl = _u(c.rng, 30, 80)  # voluntary 30-500 µV (§1); a modest effort
        end = self.at_s + self.transition_s
        c.add_emg(TA, self.at_s, end, lambda t: lvl * plateau(t, self.at_s, end, 0.3, 0.3), _u(c.rng, 50, 90))
        stop = self.lie_down_s if self.lie_down_s is not None else c.duration_s
        c.note("wake", self.at_s, stop, self.kind)
        if self.lie_down_s is not None:
            c.move_to(self.lie_down_s, self.transition_s, before)
            c.jerk(self.lie_down_s + 0.5 * self.transition_s, _u(c.rng, 0.1, 0.3))


@dataclass(frozen=True, slots=True)
class Rub:
    """Rubs the calf: ACC 1-3 Hz at 0.05-0.3 g and electrode-motion artefact on the calf EMG, each
    stroke 50-500 µV below 20 Hz (§1 cramp ACC column, motion-artefact row (g))."""

    at_s: float
    duration_s: float
    stroke_hz: float = 2.0
    acc_g: float = 0.15
    artefact_uv: float = 150.0

    def draw(self, c: Canvas) -> None:
        a, b = self.at_s, self.at_s + self.duration_s
        c.oscillate(a, b, self.stroke_hz, self.acc_g)
        width = 0.5 / self.stroke_hz
        c.add_artefact(
            CALF,
            a,
            b,
            lambda t: self.artefact_uv * pulse_train(t, a, b, self.stroke_hz, width),
        )
        # The hand on the skin also presses the electrode: broadband pick-up, a little
        c.add_emg(CALF, a, b, lambda t: 0.1 * self.artefact_uv * pulse_train(t, a, b, self.stroke_hz, width), 40.0)
        c.note("voluntary", a, b, "rub")
        c.note("artifact", a, b, "electrode_motion")


@dataclass(frozen=True, slots=True)
class Walk:
    """Gets up and walks (to the bathroom and back): standing gravity, steps at ``cadence_hz`` (1-2 Hz,
    |acc| SD ≈ 0.3 g, §1), calf push-off and TA swing bursts at each step (voluntary 30-500 µV, §1)."""

    at_s: float
    duration_s: float
    cadence_hz: float = 1.8
    pause: tuple[float, float] | None = None  # (start after at_s, length) standing still mid-walk

    def draw(self, c: Canvas) -> None:
        before = c.posture_now
        a, b = self.at_s, self.at_s + self.duration_s
        c.move_to(a, 2.0, (-1.0, 0.0, 0.0))  # stands up
        c.jerk(a + 1.0, 0.4)
        walk_a = a + 3.0
        walk_b = b - 3.0
        spans = [(walk_a, walk_b)]
        if self.pause is not None:
            p0, p1 = walk_a + self.pause[0], walk_a + self.pause[0] + self.pause[1]
            spans = [(walk_a, p0), (p1, walk_b)]
        calf_lvl, ta_lvl = _u(c.rng, 80, 200), _u(c.rng, 40, 120)
        period = 1.0 / self.cadence_hz
        for s, e in spans:
            c.oscillate(s, e, self.cadence_hz, 0.42)  # sine of 0.42 g peak = 0.3 g SD (UCI walking, §1)
            c.add_emg(CALF, s, e, _pulses(calf_lvl, s, e, self.cadence_hz, 0.4 * period), 80.0)
            c.add_emg(TA, s, e, _pulses(ta_lvl, s + 0.5 * period, e, self.cadence_hz, 0.3 * period), 70.0)
        c.move_to(b - 2.0, 2.0, before)  # lies down again
        c.jerk(b - 1.0, 0.3)
        c.note("voluntary", a, b, "walk")


@dataclass(frozen=True, slots=True)
class Turn:
    """Turns over in bed: gravity rotates to ``to`` (30-180°), 0.1-1 g transients, multi-muscle EMG
    30-500 µV for the movement's 1-10 s (§1 voluntary/turning row; §6: 1.6 shifts/h)."""

    at_s: float
    duration_s: float
    to: Vec
    level_uv: float = 120.0

    def draw(self, c: Canvas) -> None:
        a, b = self.at_s, self.at_s + self.duration_s
        c.move_to(a + 0.2 * self.duration_s, 0.6 * self.duration_s, self.to)
        for k in range(int(c.rng.integers(2, 4))):
            c.jerk(a + (k + 0.5) * self.duration_s / 3, _u(c.rng, 0.1, 0.6))
        lvl = self.level_uv
        c.add_emg(CALF, a, b, lambda t: lvl * plateau(t, a, b, 0.4, 0.4) * (0.6 + 0.4 * np.sin(3.0 * (t - a))), 60.0)
        c.add_emg(TA, a, b, lambda t: 0.8 * lvl * plateau(t, a + 0.2, b, 0.4, 0.4), 70.0)
        c.note("turn", a, b)


@dataclass(frozen=True, slots=True)
class Voluntary:
    """An awake voluntary contraction (pointing or pulling up the foot), 1-10 s, 30-500 µV (§1), with
    the small ACC of a foot moving (0.02-0.1 g)."""

    at_s: float
    duration_s: float
    channel: int = CALF
    level_uv: float = 150.0

    def draw(self, c: Canvas) -> None:
        a, b = self.at_s, self.at_s + self.duration_s
        c.add_emg(self.channel, a, b, lambda t: self.level_uv * plateau(t, a, b, 0.5, 0.5), _u(c.rng, 50, 90))
        c.add_emg(1 - self.channel, a, b, lambda t: 0.2 * self.level_uv * plateau(t, a, b, 0.5, 0.5), 70.0)
        c.jerk(a + 0.3, _u(c.rng, 0.02, 0.1))
        c.jerk(b - 0.3, _u(c.rng, 0.02, 0.1))
        c.note("voluntary", a, b, "foot")


# --------------------------------------------------------------------------------------------- spasms


@dataclass(frozen=True, slots=True)
class Tonic:
    """Tonic spasm: rises in 0.1-0.4 s (issue 14), 20-500 µV (§1 (g)), TA + calf co-activation
    (§1, §3), median 60-100 Hz (§1 (g)); 1 s to minutes. ``tilt_deg`` > 0: comes with a posture change."""

    onset_s: float
    duration_s: float
    level_uv: float = 120.0
    ta_share: float = 0.7
    tilt_deg: float = 0.0

    def draw(self, c: Canvas) -> None:
        a, b = self.onset_s, self.onset_s + self.duration_s
        rise, fall = _u(c.rng, 0.1, 0.4), _u(c.rng, 0.2, 0.6)
        fm = _u(c.rng, 60, 100)
        c.add_emg(CALF, a, b, lambda t: self.level_uv * plateau(t, a, b, rise, fall), fm)
        c.add_emg(TA, a, b, lambda t: self.ta_share * self.level_uv * plateau(t, a, b, rise, fall), fm)
        if self.tilt_deg:
            before = c.posture_now
            c.move_to(a + 0.1, 0.8, tilted(self.tilt_deg, before))
            c.move_to(b, 1.5, before)
        c.note("spasm", a, b, "tonic")


@dataclass(frozen=True, slots=True)
class Clonus:
    """Clonus: 50-100 ms bursts (§1 (g)) at 4.7-7 Hz (§3 Wallace 2005) for seconds to > 1 min, with ACC
    oscillating at the burst rate, 0.05-0.5 g (§1 (g)). One spasm from the first burst to the last."""

    onset_s: float
    duration_s: float
    rate_hz: float = 5.5
    level_uv: float = 200.0
    acc_g: float = 0.15

    def draw(self, c: Canvas) -> None:
        a = self.onset_s
        burst = _u(c.rng, 0.05, 0.1)
        period = 1.0 / self.rate_hz
        n = int(np.floor((self.duration_s - burst) / period)) + 1
        b = a + (n - 1) * period + burst  # the last burst's end
        c.add_emg(CALF, a, b, lambda t: self.level_uv * pulse_train(t, a, b, self.rate_hz, burst), _u(c.rng, 60, 100))
        c.add_emg(
            TA, a, b, lambda t: 0.3 * self.level_uv * pulse_train(t, a + 0.5 * period, b, self.rate_hz, burst), 80.0
        )
        c.oscillate(a, b, self.rate_hz, self.acc_g, ramp_s=0.2)
        c.note("spasm", a, b, "clonus")


@dataclass(frozen=True, slots=True)
class Flexor:
    """Flexor spasm: pulls the leg up (§3). TA-led with calf co-activation, rise 0.1-0.4 s, 1-15 s
    (issue 14); the shank rotates 20-90° in 0.2-1 s with a 0.3-2 g jerk (§1 (g)), and returns after."""

    onset_s: float
    duration_s: float
    level_uv: float = 150.0
    rotate_deg: float = 50.0

    def draw(self, c: Canvas) -> None:
        a, b = self.onset_s, self.onset_s + self.duration_s
        rise, fall = _u(c.rng, 0.1, 0.4), _u(c.rng, 0.2, 0.6)
        c.add_emg(TA, a, b, lambda t: self.level_uv * plateau(t, a, b, rise, fall), _u(c.rng, 60, 100))
        c.add_emg(CALF, a, b, lambda t: 0.5 * self.level_uv * plateau(t, a, b, rise, fall), _u(c.rng, 60, 100))
        before = c.posture_now
        c.move_to(a + 0.05, _u(c.rng, 0.2, 1.0), tilted(self.rotate_deg, before))
        c.jerk(a + 0.2, _u(c.rng, 0.3, 2.0), 0.1)
        c.move_to(b, 1.5, before)
        c.note("spasm", a, b, "flexor")


@dataclass(frozen=True, slots=True)
class Extensor:
    """Extensor spasm: a kick that straightens the leg, then the posture is held (§1 (g), §3). Calf-led
    with TA co-activation, rise 0.1-0.4 s, 1-15 s; a 0.3-2 g jerk, shank rotation 10-30° kept after."""

    onset_s: float
    duration_s: float
    level_uv: float = 150.0
    rotate_deg: float = 20.0

    def draw(self, c: Canvas) -> None:
        a, b = self.onset_s, self.onset_s + self.duration_s
        rise, fall = _u(c.rng, 0.1, 0.4), _u(c.rng, 0.2, 0.6)
        c.add_emg(CALF, a, b, lambda t: self.level_uv * plateau(t, a, b, rise, fall), _u(c.rng, 60, 100))
        c.add_emg(TA, a, b, lambda t: 0.4 * self.level_uv * plateau(t, a, b, rise, fall), _u(c.rng, 60, 100))
        c.move_to(a + 0.05, _u(c.rng, 0.2, 0.6), tilted(-self.rotate_deg, c.posture_now))
        c.jerk(a + 0.15, _u(c.rng, 0.3, 2.0), 0.1)
        c.note("spasm", a, b, "extensor")


@dataclass(frozen=True, slots=True)
class Myoclonic:
    """A series of spinal myoclonic jerks: 50-300 ms each (§1 (g)) at 0.3-0.5 Hz (§3 Calancie 2006),
    each with a small ACC transient. One spasm covering the whole series (events.md)."""

    onset_s: float
    n_jerks: int = 8
    rate_hz: float = 0.4
    level_uv: float = 150.0

    def draw(self, c: Canvas) -> None:
        a = self.onset_s
        width = _u(c.rng, 0.05, 0.3)
        b = a + (self.n_jerks - 1) / self.rate_hz + width
        fm = _u(c.rng, 60, 110)
        c.add_emg(CALF, a, b, lambda t: self.level_uv * pulse_train(t, a, b, self.rate_hz, width), fm)
        c.add_emg(TA, a, b, lambda t: 0.6 * self.level_uv * pulse_train(t, a, b, self.rate_hz, width), fm)
        for k in range(self.n_jerks):
            c.jerk(a + k / self.rate_hz + 0.5 * width, _u(c.rng, 0.05, 0.3), 0.08)
        c.note("spasm", a, b, "myoclonic")


# ----------------------------------------------------------------------------------------------- PLM


@dataclass(frozen=True, slots=True)
class PlmSeries:
    """Periodic limb movements by AASM numbers (§5): ``n`` >= 4 LMs of 0.5-10 s (mean ~3.2 s), onset
    intervals 5-90 s (RLS peak 15-30 s), mainly TA at 10-100 µV (§1 (g)) and >= 8 µV above rest, calf
    weaker; shank 0.005-0.1 g with tilt < 5°, none at all for 39 % of LMs (§5 Terrill 2013)."""

    onset_s: float
    n: int = 5
    interval_s: tuple[float, float] = (15.0, 30.0)
    duration_s: tuple[float, float] = (1.5, 5.0)
    level_uv: tuple[float, float] = (15.0, 60.0)
    onsets: tuple[float, ...] = field(default=())  # explicit onsets override n/interval

    def draw(self, c: Canvas) -> None:
        if self.onsets:
            starts = list(self.onsets)
        else:
            gaps = c.rng.uniform(*self.interval_s, size=self.n - 1)
            starts = list(self.onset_s + np.concatenate([[0.0], np.cumsum(gaps)]))
        for s in starts:
            d = _u(c.rng, *self.duration_s)
            lvl = _u(c.rng, *self.level_uv)
            e = s + d
            fm = _u(c.rng, 40, 90)  # PSG band 10-100 Hz (§1)
            c.add_emg(TA, s, e, _bump(lvl, s, e, 0.15, 0.3), fm)
            c.add_emg(CALF, s, e, _bump(0.2 * lvl, s, e, 0.15, 0.3), fm)
            if c.rng.random() > 0.39:
                c.jerk(s + 0.3, _u(c.rng, 0.005, 0.1), 0.2)
            c.note("plm", s, e)
