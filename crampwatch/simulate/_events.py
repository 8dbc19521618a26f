"""Planted events: cramps and their precursor and wake-up, spasms, PLM series, and the look-alikes.

Every event knows its time support, its truth annotations (``shared/reference/events.md``), the posture
moves it causes, and renders its own EMG (µV, input-referred, columns calf / tibialis) and ACC (g,
additive on top of gravity) for its whole support from its own seed, so any chunk of the night can be cut
out of it. Numbers (physiology.md; (g) = engineering guess):

* cramp: 50-1000 µV RMS at the calf (g), 30 s-10 min, rise 0.5-3 s (g), waxing/waning, optional 1-3 s
  surge then abrupt offset 0.2-1 s; MU rates 6-25 pps (mean 14.5), ISI CV 0.45, 4 % doublets, common
  1.3-1.5 Hz modulation, depth 20-50 % (Minetto 2009); median frequency drifts down 5-20 % (g);
  10-20 % crosstalk into the tibialis channel (g); shank still (tilt < 10 deg, tremor < 0.05 g).
* precursor: 20-60 s rising to 2-6x the floor (Chaney & Sherman: +217 %, 41 s before waking).
* wake: 30-180 s: sit up (tilt 45-90 deg), rub 1-3 Hz 0.05-0.3 g, walk 1-2 Hz, |acc| SD ~0.3 g (UCI).
* spasm (Thomas 2014; Wallace 2005; Calancie 2006): tonic 1-120 s 20-500 µV co-active; clonus 4.7-7 Hz
  bursts of 50-100 ms for 3-60 s with ACC 0.05-0.5 g; flexor burst 0.5-3 s with shank rotation 20-90 deg
  in 0.2-1 s and a 0.3-2 g jerk, then back; extensor kick then held posture; myoclonic 3-10 jerks of
  50-300 ms at 0.3-0.5 Hz.
* PLM (AASM/WASM): >= 4 movements 5-90 s apart (peak 15-30 s), 0.5-10 s (mean 3.2 s), tibialis
  10-100 µV, calf weaker, ACC 0.005-0.1 g in 61 % (Terrill 2013).
* look-alikes: turning 1-10 s, 30-500 µV both channels, gravity rotates 30-180 deg (1.6/h, Skarpsno
  2017); voluntary 1-10 s 30-300 µV; fasciculations 20-300 µV MUAPs at 0.1-80/min, doublets 32-35 ms;
  motion artefact < 20 Hz 50 µV-5 mV 0.1-2 s with ACC jerk; electrode pop step + decay tau 0.05-1 s,
  0.1-10 mV; lead-off flat at 0 or the rail for 5-120 s.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..recording import Annotation
from ._params import EventRanges, SimParams
from ._synth import (
    F64,
    PoolSpec,
    band_noise,
    muap,
    pool_emg,
    rotate,
    sample_index,
    smooth_step,
    spike_trains,
)

DRIVE_DT = 0.005
X_AXIS = np.array([1.0, 0.0, 0.0])  # along the shank, towards the foot
Y_AXIS = np.array([0.0, 1.0, 0.0])  # lateral
Z_AXIS = np.array([0.0, 0.0, 1.0])  # anterior, out of the shin

CRAMP_POOL = PoolSpec(n_mu=45, rate_min=6.0, rate_max=25.0, sigma_s=(1.2e-3, 2.4e-3), drift=0.12)
SPASM_POOL = PoolSpec(n_mu=40, rate_min=6.0, rate_max=22.0, sigma_s=(1.5e-3, 3.0e-3))
VOLUNTARY_POOL = PoolSpec(n_mu=40, rate_min=8.0, rate_max=30.0, sigma_s=(1.8e-3, 4.0e-3), isi_cv=0.2)
LOW_POOL = PoolSpec(n_mu=10, rate_min=6.0, rate_max=12.0, sigma_s=(1.5e-3, 3.0e-3), max_threshold=0.5)


@dataclass(frozen=True)
class Move:
    """A posture change: gravity turns (smoothly) to ``g_new`` between ``t0`` and ``t1``."""

    t0: float
    t1: float
    g_new: F64


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def lying_posture(rng: np.random.Generator) -> F64:
    """A lying shank gravity reading (g): side 54 %, back 38 %, front 8 % (Skarpsno 2017), perturbed."""
    r = rng.random()
    if r < 0.54:
        g = Y_AXIS * (1.0 if rng.random() < 0.5 else -1.0)
    elif r < 0.92:
        g = Z_AXIS.copy()
    else:
        g = -Z_AXIS
    g = rotate(g, Y_AXIS, math.radians(rng.uniform(-5.0, 25.0)))  # knee bent a little
    axis = rng.standard_normal(3)
    return rotate(g, axis, math.radians(rng.normal(0.0, 6.0)))


def angle_deg(a: F64, b: F64) -> float:
    cos = float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


class Event:
    """Base class: support [t0, t1) in seconds; subclasses fill in annotations and waveforms."""

    kind = "event"

    def __init__(self, t0: float, t1: float, seed: tuple[int, ...]) -> None:
        self.t0 = t0
        self.t1 = t1
        self.seed = seed
        #: Channel forced to a constant (lead-off); None for ordinary events.
        self.override: tuple[int, float] | None = None

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([*self.seed, stream])

    def annotations(self) -> list[Annotation]:
        return [Annotation(self.kind, self.t0, self.t1)]

    def plan_moves(self, g: F64) -> list[Move]:
        return []

    def is_scored(self) -> bool:
        return False

    def span(self, fs: float) -> tuple[int, int]:
        return sample_index(self.t0, fs), sample_index(self.t1, fs)

    def emg(self, fs: float, p: SimParams) -> F64 | None:
        """(n, 2) µV over samples ``span(fs)``, columns calf, tibialis; None if the event has no EMG."""
        return None

    def acc(self, fs: float, p: SimParams) -> F64 | None:
        """(m, 3) g over samples ``span(fs)``, added to gravity; None if the event has no ACC."""
        return None

    # helpers -------------------------------------------------------------------------------------
    def times(self, fs: float) -> F64:
        i0, i1 = self.span(fs)
        return np.arange(i0, i1) / fs


def drive_emg(
    rng: np.random.Generator,
    fs: float,
    t: F64,
    knots_t: F64,
    knots_a: F64,
    spec: PoolSpec,
    target_rms: float,
    mod: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> F64:
    """MU-pool EMG at sample times ``t`` for a drive given by knots; RMS ``target_rms`` where the drive
    is >= half its maximum. ``mod`` = (frequency Hz, depth, phase) of the common drive oscillation."""
    n = t.size
    if n == 0:
        return np.zeros(0)
    # Synthesise only where the drive can be non-zero (knots span): long supports with short bursts
    # (wake, walking) would otherwise build motor-unit trains over minutes of silence.
    lo = int(np.searchsorted(t, knots_t[0], side="left"))
    hi = int(np.searchsorted(t, knots_t[-1], side="right"))
    if lo > 0 or hi < n:
        out = np.zeros(n)
        if hi > lo:
            out[lo:hi] = drive_emg(rng, fs, t[lo:hi], knots_t, knots_a, spec, target_rms, mod)
        return out
    # Separate bursts (silent > 1 s between them) are synthesised one by one, each scaled by its own peak
    # drive relative to the largest (EMG amplitude ~ drive), as one call over the whole span would.
    silent = (knots_a[:-1] == 0) & (knots_a[1:] == 0) & (np.diff(knots_t) > 1.0)
    if silent.any() and knots_a.max() > 0:
        out = np.zeros(n)
        cuts = np.concatenate(([0], np.flatnonzero(silent) + 1, [knots_t.size]))
        top = float(knots_a.max())
        for a, b in itertools.pairwise(cuts):
            kt_s, ka_s = knots_t[a:b], knots_a[a:b]
            if b - a < 2 or ka_s.max() <= 0:
                continue
            i0 = int(np.searchsorted(t, kt_s[0], side="left"))
            i1 = int(np.searchsorted(t, kt_s[-1], side="right"))
            if i1 > i0:
                level = target_rms * float(ka_s.max()) / top
                out[i0:i1] += drive_emg(rng, fs, t[i0:i1], kt_s, ka_s, spec, level, mod)
        return out
    t_start = float(t[0])
    ng = math.ceil((float(t[-1]) - t_start) / DRIVE_DT) + 2
    tg = t_start + np.arange(ng) * DRIVE_DT
    base = np.interp(tg, knots_t, knots_a, left=0.0, right=0.0)
    f_mod, depth, phase = mod
    drive = base * (1.0 + depth * np.sin(2 * np.pi * f_mod * tg + phase)) if depth > 0 else base
    trains, thr = spike_trains(rng, drive, DRIVE_DT, spec)
    x = pool_emg(rng, fs, n, trains, thr, spec)
    env = np.interp(t, knots_t, knots_a, left=0.0, right=0.0)
    sel = env >= 0.5 * float(env.max()) if env.max() > 0 else np.ones(n, bool)
    rms = float(np.sqrt(np.mean(x[sel] ** 2))) if sel.any() else 0.0
    return x * (target_rms / rms) if rms > 0 else x


def crosstalk(x: F64, fs: float, ratio: float) -> F64:
    """Volume-conducted copy: low-passed (~4 ms moving average) and scaled."""
    k = max(1, round(0.004 * fs))
    return np.convolve(x, np.ones(k) / k, mode="same") * ratio


def transient(
    rng: np.random.Generator, t: F64, c: float, dur: float, peak: float, band: tuple[float, float], fs: float
) -> F64:
    """A 3-axis band-limited acceleration burst centred at ``c`` lasting ``dur`` with peak ``peak`` (g)."""
    w = np.where(np.abs(t - c) < dur / 2, 0.5 + 0.5 * np.cos(2 * np.pi * (t - c) / max(dur, 1e-3)), 0.0)
    out = np.zeros((t.size, 3))
    sel = w > 0
    if not sel.any():
        return out
    noise = band_noise(rng, int(sel.sum()), fs, band[0], band[1], 3) * rng.uniform(0.3, 1.0, 3)
    burst = noise * w[sel, None]
    m = float(np.max(np.abs(burst)))
    out[sel] = burst * (peak / m if m > 0 else 0.0)
    return out


def trapezoid(t0: float, rise: float, dur: float, fall: float, level: float = 1.0) -> tuple[F64, F64]:
    """Knots of a trapezoid starting at t0: rise, flat top, fall; total ``dur``."""
    flat = max(dur - rise - fall, 0.0)
    return (
        np.array([t0, t0 + rise, t0 + rise + flat, t0 + rise + flat + fall]),
        np.array([0.0, level, level, 0.0]),
    )


def _with_dips(r: np.random.Generator, kt: F64, ka: F64, lo: float, hi: float, ev: EventRanges) -> tuple[F64, F64, int]:
    """The envelope knots with 0-3 relief dips (down in 0.3-1 s to a share of the level, held, back up)."""
    if r.random() >= ev.dip_prob or hi - lo < 8.0:
        return kt, ka, 0
    n = int(r.integers(1, 4))
    starts = np.sort(r.uniform(lo, hi, n))
    t_grid = np.unique(np.concatenate([kt, np.arange(kt[0], kt[-1], 0.25)]))
    mult = np.ones_like(t_grid)
    last_end = -np.inf
    n_dips = 0
    for s0 in starts:
        down, up = r.uniform(0.3, 1.0), r.uniform(0.3, 1.5)
        hold = r.uniform(*ev.dip_s)
        if s0 < last_end + 3.0 or s0 + down + hold + up > hi:
            continue
        depth = r.uniform(*ev.dip_depth)
        dk = np.array([s0, s0 + down, s0 + down + hold, s0 + down + hold + up])
        dm = np.interp(t_grid, dk, [1.0, depth, depth, 1.0])
        mult = np.minimum(mult, dm)
        last_end = dk[-1]
        n_dips += 1
    return t_grid, np.interp(t_grid, kt, ka) * mult, n_dips


# --------------------------------------------------------------------------------------------------
class Cramp(Event):
    """A cramp from onset to offset (one annotation, events.md), whatever happens inside it.

    The envelope rises in ``cramp_rise_s``, waxes and wanes, may dip to a share of its level for a few
    seconds (partial relief) and come back, and ends either with a stretch (optional 1-3 s surge, then an
    abrupt fall) or a linear fade; the offset is where the discharge is back at nothing.
    """

    kind = "cramp"

    def __init__(
        self, t0: float, dur: float, seed: tuple[int, ...], amp_uv: float, ev: EventRanges | None = None
    ) -> None:
        super().__init__(t0 - 0.05, t0 + dur + 0.05, seed)
        ev = ev if ev is not None else EventRanges()
        r = self.rng(0)
        self.on, self.off = t0, t0 + dur
        self.amp = amp_uv
        rise = min(r.uniform(*ev.cramp_rise_s), 0.2 * dur)
        self.fade = bool(r.random() < ev.fade_prob)
        if self.fade:
            fall = min(r.uniform(*ev.fade_s), 0.4 * dur)
            surge = 0.0
        else:
            fall = min(r.uniform(*ev.stretch_fall_s), 0.1 * dur)
            surge = min(r.uniform(1.0, 3.0), 0.1 * dur) if r.random() < 0.6 else 0.0
        body_end = self.off - fall - surge
        kt = [self.on, self.on + rise]
        ka = [0.0, r.uniform(0.75, 1.0)]
        t = self.on + rise
        while True:
            t += r.uniform(4.0, 20.0)
            if t >= body_end - 1.0:
                break
            kt.append(t)
            ka.append(r.uniform(0.55, 1.0))
        kt.append(body_end)
        ka.append(r.uniform(0.6, 1.0))
        if surge > 0:
            kt.append(self.off - fall)
            ka.append(r.uniform(1.2, 1.6))
        kt.append(self.off)
        ka.append(0.0)
        self.kt, self.ka, self.dips = _with_dips(
            r, np.array(kt), np.array(ka), self.on + rise + 1.0, body_end - 1.0, ev
        )
        self.mod = (r.uniform(1.3, 1.5), r.uniform(0.2, 0.5), r.uniform(0, 2 * np.pi))
        self.n_mu = int(r.integers(30, 70))
        self.drift = r.uniform(0.05, 0.2)
        self.xtalk = r.uniform(0.1, 0.2)
        self.tilt = r.uniform(*ev.cramp_tilt_deg)
        self.tremor = r.uniform(*ev.cramp_tremor_g)
        if ev.still_prob > 0 and self.rng(7).random() < ev.still_prob:  # its own stream: nothing else moves
            self.tilt = self.tremor = 0.0

    def is_scored(self) -> bool:
        return True

    def annotations(self) -> list[Annotation]:
        return [Annotation("cramp", self.on, self.off)]

    def plan_moves(self, g: F64) -> list[Move]:
        return [Move(self.on, self.on + 1.0, rotate(g, Y_AXIS, math.radians(self.tilt)))]

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        spec = PoolSpec(n_mu=self.n_mu, rate_min=6.0, rate_max=25.0, sigma_s=CRAMP_POOL.sigma_s, drift=self.drift)
        calf = drive_emg(r, fs, t, self.kt, self.ka, spec, self.amp * p.cramp_amp_scale, self.mod)
        return np.column_stack([calf, crosstalk(calf, fs, self.xtalk)])

    def acc(self, fs: float, p: SimParams) -> F64:
        r = self.rng(2)
        t = self.times(fs)
        env = np.interp(t, self.kt, self.ka, left=0.0, right=0.0)
        out: F64 = band_noise(r, t.size, fs, 4.0, 12.0, 3) * (self.tremor / math.sqrt(3)) * env[:, None]
        return out


class Precursor(Event):
    kind = "precursor"

    def __init__(self, t0: float, t1: float, seed: tuple[int, ...], amp_uv: float) -> None:
        super().__init__(t0, t1, seed)
        x = np.linspace(0.0, 1.0, 41)
        k = self.rng(0).uniform(2.0, 4.0)
        self.kt = t0 + x * (t1 - t0)
        self.ka = (np.exp(k * x) - 1.0) / (math.exp(k) - 1.0)
        self.ka[-1] = self.ka[-2]  # hand over to the cramp at full precursor level
        self.amp = amp_uv

    def emg(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        kt = np.append(self.kt, self.t1 + 1e-6)
        ka = np.append(self.ka, 0.0)
        calf = drive_emg(self.rng(1), fs, t, kt, ka, LOW_POOL, self.amp)
        # normalise on the last quarter (drive >= half max is the end of the ramp already)
        return np.column_stack([calf, crosstalk(calf, fs, 0.15)])


class Residual(Event):
    """Low residual calf tone after a cramp's offset (~2x the floor, Chaney & Sherman), fading; not a cramp."""

    kind = "residual"

    def __init__(self, t0: float, t1: float, seed: tuple[int, ...], x_floor: float) -> None:
        super().__init__(t0, t1, seed)
        self.x_floor = x_floor

    def emg(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        kt = self.t0 + np.linspace(0.0, self.t1 - self.t0, 21)
        ka = np.exp(-3.0 * np.linspace(0.0, 1.0, 21))
        ka[-1] = 0.0
        level = p.noise_floor_uv * math.sqrt(max(self.x_floor**2 - 1.0, 0.05))
        calf = drive_emg(self.rng(1), fs, t, kt, ka, LOW_POOL, level)
        return np.column_stack([calf, crosstalk(calf, fs, 0.15)])


class Wake(Event):
    """The cramp's pain wakes the sleeper, usually while it goes on (events.md, physiology.md §1).

    Sit up (tilt 45-90 deg) or bend the knee, then bouts of rubbing the calf (ACC at 1-3 Hz, and an
    electrode-motion artefact < 20 Hz on the EMG) with stretch attempts between them (tibialis bursts),
    all on top of the cramp's own discharge while it lasts; after the offset maybe stand and walk
    (1-2 Hz steps, |acc| SD ~0.3 g), then lie down again. Labelled ``wake``; the windows inside the cramp
    are still cramp.
    """

    kind = "wake"

    def __init__(
        self, t0: float, t1: float, seed: tuple[int, ...], cramp_off: float, ev: EventRanges | None = None
    ) -> None:
        super().__init__(t0, t1, seed)
        ev = ev if ev is not None else EventRanges()
        r = self.rng(0)
        d = t1 - t0
        self.sit = min(r.uniform(1.0, 3.0), 0.1 * d)
        self.lie = min(r.uniform(2.0, 4.0), 0.1 * d)
        self.knee = bool(r.random() < ev.knee_bend_prob)
        self.tilt = r.uniform(45.0, 90.0) if not self.knee else r.uniform(25.0, 70.0)
        end = t1 - self.lie
        walk_from = max(cramp_off + r.uniform(2.0, 15.0), t0 + self.sit + 2.0)
        self.walk_s, self.walk_e = 0.0, 0.0
        if r.random() < 0.5 and end - walk_from > 20.0:
            self.walk_s, self.walk_e = walk_from, walk_from + (end - walk_from) * r.uniform(0.4, 0.9)
            end = self.walk_s - 0.5
        # rub bouts: (start, stop, stroke Hz, acc g, artefact µV)
        self.bouts: list[tuple[float, float, float, float, float]] = []
        tb = t0 + self.sit + r.uniform(0.5, 5.0)
        while tb < end - 2.0:
            stop = min(tb + r.uniform(*ev.rub_bout_s), end)
            self.bouts.append(
                (tb, stop, r.uniform(*ev.rub_hz), r.uniform(*ev.rub_acc_g), log_uniform(r, *ev.rub_artefact_uv))
            )
            tb = stop + r.uniform(2.0, 15.0)
        self.step_f = r.uniform(1.0, 2.0) / 2.0  # one leg: stride frequency is half the step rate
        self.g_end = lying_posture(r)
        self.stretch_uv = log_uniform(r, 15.0, 150.0)
        self.walk_uv = log_uniform(r, 50.0, 300.0)

    def plan_moves(self, g: F64) -> list[Move]:
        if self.knee:
            g_up = rotate(g, Y_AXIS, -math.radians(self.tilt))
        else:
            g_up = rotate(Z_AXIS, Y_AXIS, -math.radians(self.tilt))
        moves = [Move(self.t0, self.t0 + self.sit, g_up)]
        if self.walk_e > 0:
            g_stand = rotate(-X_AXIS, Y_AXIS, math.radians(5.0))
            moves.append(Move(self.walk_s - 1.0, self.walk_s, g_stand))
        moves.append(Move(self.t1 - self.lie, self.t1, self.g_end))
        return moves

    def _rub_weight(self, t: F64, bout: tuple[float, float, float, float, float]) -> F64:
        s0, s1 = bout[0], bout[1]
        ramp = min(1.0, 0.25 * (s1 - s0))
        return np.asarray(smooth_step((t - s0) / ramp) * smooth_step((s1 - t) / ramp), dtype=np.float64)

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        # sitting up and lying down: short multi-muscle voluntary bursts
        kt_l: list[float] = []
        for s0, d0 in ((self.t0, self.sit), (self.t1 - self.lie, self.lie)):
            kt_l += [s0, s0 + 0.2 * d0, s0 + 0.7 * d0, s0 + d0]
        kt = np.array(kt_l)
        ka = np.tile([0.0, 1.0, 1.0, 0.0], 2)
        big = log_uniform(r, 30.0, 200.0)
        calf = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, big)
        tib = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, big * r.uniform(0.5, 1.5))
        # stretch attempts between rub bouts: the tibialis dorsiflexes the foot for 1-3 s
        bursts_t: list[float] = []
        bursts_a: list[float] = []
        edges = [self.t0 + self.sit] + [x for bt in self.bouts for x in bt[:2]] + [self.t1 - self.lie]
        for g0, g1 in zip(edges[0::2], edges[1::2], strict=False):
            if g1 - g0 > 3.0 and r.random() < 0.7:
                d = min(r.uniform(1.0, 3.0), g1 - g0 - 1.0)
                tb = r.uniform(g0 + 0.3, g1 - d - 0.3)
                lvl = r.uniform(0.5, 1.0)
                bursts_t += [tb, tb + 0.2, tb + d - 0.2, tb + d]
                bursts_a += [0.0, lvl, lvl, 0.0]
        if bursts_t:
            kb, ab = np.array(bursts_t), np.array(bursts_a)
            tib = tib + drive_emg(r, fs, t, kb, ab, VOLUNTARY_POOL, self.stretch_uv)
            calf = calf + drive_emg(r, fs, t, kb, ab, VOLUNTARY_POOL, self.stretch_uv * r.uniform(0.1, 0.6))
        # rubbing moves the electrodes: low-frequency (< 20 Hz) artefact at the stroke rate, sometimes
        # with sharper edges (up to 40 Hz) when the hand slides over the electrode
        for bout in self.bouts:
            sel = (t >= bout[0]) & (t < bout[1])
            if not sel.any():
                continue
            ts = t[sel]
            w = self._rub_weight(ts, bout)
            ph = 2 * np.pi * bout[2] * ts + r.uniform(0, 2 * np.pi)
            art = (np.sin(ph) + 0.4 * np.sin(2 * ph + 1.0)) / 1.1
            hi = min(40.0 if r.random() < 0.3 else 15.0, 0.4 * fs)
            art = art + 0.6 * band_noise(r, ts.size, fs, 0.5, hi)[:, 0]
            calf[sel] += art * w * bout[4]
            tib[sel] += art * w * bout[4] * r.uniform(0.05, 0.5)
        if self.walk_e > 0:
            period = 1.0 / self.step_f
            starts = np.arange(self.walk_s, self.walk_e - period, period)
            if starts.size:
                ones = np.ones_like(starts)
                # calf push-off late stance, tibialis in swing / heel strike
                for col, off, share in ((0, 0.35, 0.3), (1, 0.7, 0.25)):
                    kt_w = np.stack(
                        [
                            starts + off * period,
                            starts + (off + 0.05) * period,
                            starts + (off + share) * period,
                            starts + (off + share + 0.05) * period,
                        ],
                        axis=1,
                    ).ravel()
                    ka_w = np.stack([0 * ones, ones, ones, 0 * ones], axis=1).ravel()
                    w = drive_emg(r, fs, t, kt_w, ka_w, VOLUNTARY_POOL, self.walk_uv)
                    if col == 0:
                        calf = calf + w
                        tib = tib + crosstalk(w, fs, 0.15)
                    else:
                        tib = tib + w
                        calf = calf + crosstalk(w, fs, 0.15)
        return np.column_stack([calf, tib])

    def acc(self, fs: float, p: SimParams) -> F64:
        r = self.rng(2)
        t = self.times(fs)
        out = np.zeros((t.size, 3))
        for bout in self.bouts:
            w_rub = self._rub_weight(t, bout)
            f = bout[2] * (1 + 0.05 * np.sin(2 * np.pi * 0.1 * t))
            ph = 2 * np.pi * np.cumsum(f) / fs
            direction = rotate(np.array([0.3, 1.0, 0.5]), r.standard_normal(3), r.uniform(0.0, 0.6))
            out += np.outer(np.sin(ph) * w_rub * bout[3], direction / np.linalg.norm(direction))
            out += band_noise(r, t.size, fs, 0.5, min(8.0, 0.4 * fs), 3) * 0.1 * bout[3] * w_rub[:, None]
        if self.walk_e > 0:
            w = smooth_step((t - self.walk_s) / 1.0) * smooth_step((self.walk_e - t) / 1.0)
            ph = 2 * np.pi * self.step_f * t
            ax = 0.30 * np.sin(ph) + 0.2 * np.sin(2 * ph + 0.7) + 0.1 * np.sin(3 * ph + 1.3)
            az = 0.25 * np.sin(ph + 1.0) + 0.12 * np.sin(2 * ph + 2.1)
            ay = 0.08 * np.sin(ph + 0.4)
            walk = np.column_stack([ax, ay, az]) + band_noise(r, t.size, fs, 2.0, min(15.0, 0.4 * fs), 3) * 0.08
            out += walk * w[:, None]
        for c in (self.t0 + self.sit / 2, self.t1 - self.lie / 2):
            out += transient(r, t, c, 0.8, r.uniform(0.1, 0.5), (1.0, min(10.0, 0.4 * fs)), fs)
        return out


class LegMovement(Event):
    """An isolated (non-periodic) leg movement, AASM-like: 0.5-10 s, tibialis 10-100 µV, small ACC.

    Labelled ``leg_movement`` (not a PLM: no series); the windows are leg-movement windows like a PLM's.
    """

    kind = "leg_movement"

    def __init__(self, t0: float, dur: float, seed: tuple[int, ...]) -> None:
        super().__init__(t0, t0 + dur + 0.05, seed)
        r = self.rng(0)
        self.on, self.off = t0, t0 + dur
        self.amp = log_uniform(r, 10.0, 150.0)
        self.calf_share = r.uniform(0.0, 0.6)
        self.rise = r.uniform(0.05, 0.3)
        self.acc_g = log_uniform(r, 0.005, 0.15) if r.random() < 0.61 else 0.0

    def annotations(self) -> list[Annotation]:
        return [Annotation("leg_movement", self.on, self.off)]

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        kt, ka = trapezoid(self.on, self.rise, self.off - self.on, self.rise)
        tib = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, self.amp)
        calf = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, self.amp * self.calf_share)
        return np.column_stack([calf + crosstalk(tib, fs, 0.1), tib])

    def acc(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        d = min(self.off - self.on, 2.0)
        if self.acc_g <= 0:
            return np.zeros((t.size, 3))
        return transient(self.rng(2), t, self.on + d / 2, d, self.acc_g, (0.5, min(8.0, 0.4 * fs)), fs)


# --------------------------------------------------------------------------------------------------
SPASM_SUBTYPES = ("tonic", "clonus", "flexor", "extensor", "myoclonic")


def draw_spasm_length(
    rng: np.random.Generator, subtype: str, cap: float, ev: EventRanges | None = None
) -> tuple[float, float]:
    """(EMG duration, total support length) of a spasm, EMG duration capped at ``cap``."""
    ev = ev if ev is not None else EventRanges()
    if subtype == "tonic":
        lo, hi = ev.tonic_s
        d = min(float(np.clip(rng.lognormal(math.log(math.sqrt(lo * hi) / 2.0), 1.0), lo, hi)), cap)
        return d, d
    if subtype == "clonus":
        lo, hi = ev.clonus_s
        d = min(float(np.clip(rng.lognormal(math.log(12.0), 0.7), lo, hi)), cap)
        return d, d
    if subtype in ("flexor", "extensor"):
        d = min(log_uniform(rng, *ev.kick_s), cap)
        return d, d + rng.uniform(2.0, 8.0)
    n_jerks = int(rng.integers(ev.myoclonic_jerks[0], ev.myoclonic_jerks[1] + 1))
    d = (n_jerks - 1) / rng.uniform(0.3, 0.5) + 0.3
    # room for the jitter of the last jerk, so the series keeps every jerk it was drawn with
    return min(d, cap), min(d, cap) + 0.5 * (n_jerks - 1) * 0.15 + 0.3


class Spasm(Event):
    kind = "spasm"

    def __init__(
        self,
        t0: float,
        dur: float,
        support: float,
        subtype: str,
        seed: tuple[int, ...],
        amp_uv: float,
        ev: EventRanges | None = None,
    ) -> None:
        super().__init__(t0, t0 + support, seed)
        ev = ev if ev is not None else EventRanges()
        r = self.rng(0)
        self.subtype = subtype
        self.on, self.off = t0, t0 + dur
        self.amp = amp_uv
        self.ratio = r.uniform(0.3, 1.5)  # tibialis / calf amplitude
        self.jerk = r.uniform(0.3, 2.0)
        self.rot = r.uniform(20.0, 90.0)
        self.move_time = r.uniform(0.2, 1.0)
        self.mod = (r.uniform(0.2, 1.0), r.uniform(0.0, 0.3), r.uniform(0, 2 * np.pi))
        self.bursts = np.zeros(0)
        self.burst_amp = np.zeros(0)
        self.clonus_g = r.uniform(0.05, 0.5)
        self.tremor_g = ev.tonic_tremor_g  # a tonic spasm's shank tremor, drawn in acc()
        self.still = ev.still_prob > 0 and self.rng(7).random() < ev.still_prob  # its own stream, as Cramp's
        rise_fast = log_uniform(r, *ev.spasm_rise_s)
        #: tonic spasms often shift the leg, which stays shifted (0 = no posture change)
        self.tonic_rot = r.uniform(10.0, 60.0) * r.choice([-1.0, 1.0]) if r.random() < ev.tonic_move_prob else 0.0
        if subtype == "tonic":
            rise = min(rise_fast if r.random() < 0.7 else r.uniform(0.2, 2.0), 0.3 * dur)
            fall = min(r.uniform(0.3, 2.0), 0.3 * dur)
            n_mid = max(0, int((dur - rise - fall) / 5.0))
            mid_t = np.sort(r.uniform(t0 + rise, self.off - fall, n_mid))
            self.kt = np.concatenate(([t0, t0 + rise], mid_t, [self.off - fall, self.off]))
            self.ka = np.concatenate(([0.0, 1.0], r.uniform(0.6, 1.0, n_mid), [r.uniform(0.6, 1.0), 0.0]))
        elif subtype == "clonus":
            f = r.uniform(4.7, 7.0)
            self.width = r.uniform(0.05, 0.1)
            n = max(3, int((dur - self.width) * f) + 1)
            per = (1.0 / f) * (1.0 + 0.03 * r.standard_normal(n - 1))
            c = t0 + self.width / 2 + np.concatenate(([0.0], np.cumsum(per)))
            c = c[: max(1, int(np.sum(c <= self.off - self.width / 2)))]
            self.bursts = c
            self.off = float(c[-1] + self.width / 2)
            x = np.linspace(0.0, 1.0, c.size)
            self.burst_amp = np.clip(np.sin(np.pi * (0.1 + 0.85 * x)) + 0.15 * r.standard_normal(c.size), 0.2, None)
            self.f = f
            self.kt, self.ka = np.array([t0, self.off]), np.array([1.0, 1.0])
        elif subtype in ("flexor", "extensor"):
            kt, ka = trapezoid(t0, min(rise_fast, dur / 4), dur, min(r.uniform(0.2, 1.0), dur / 4))
            if dur > 4.0:  # a long kick wanes and waxes a little while it is held
                mid = np.sort(r.uniform(kt[1], kt[2], int(dur // 3)))
                kt = np.concatenate((kt[:2], mid, kt[2:]))
                ka = np.concatenate((ka[:2], r.uniform(0.6, 1.0, mid.size), ka[2:]))
            self.kt, self.ka = kt, ka
        else:  # myoclonic
            f = r.uniform(0.3, 0.5)
            n = max(3, int((dur - 0.3) * f) + 1)
            widths = r.uniform(0.05, 0.3, n)
            starts = t0 + np.concatenate(([0.0], np.cumsum(1.0 / f * (1 + 0.05 * r.standard_normal(n - 1)))))
            keep = starts + widths <= self.t1 + 1e-9
            keep[0] = True
            starts, widths = starts[keep], widths[keep]
            self.bursts = starts
            self.widths = widths
            self.off = float(starts[-1] + widths[-1])
            kt_l: list[float] = []
            ka_l: list[float] = []
            for s, w in zip(starts, widths, strict=True):
                lvl = r.uniform(0.6, 1.0)
                kt_l += [s, s + 0.2 * w, s + 0.7 * w, s + w]
                ka_l += [0.0, lvl, lvl, 0.0]
            self.kt, self.ka = np.array(kt_l), np.array(ka_l)
        self.t1 = max(self.t1, self.off + 0.05)

    def is_scored(self) -> bool:
        return True

    def annotations(self) -> list[Annotation]:
        return [Annotation("spasm", self.on, self.off, self.subtype)]

    def plan_moves(self, g: F64) -> list[Move]:
        m0 = self.on + 0.1
        if self.subtype == "flexor":
            g_up = rotate(g, Y_AXIS, -math.radians(self.rot))
            back = self.off + 0.5
            return [Move(m0, m0 + self.move_time, g_up), Move(back, min(back + 1.5, self.t1 - 0.05), g)]
        if self.subtype == "extensor":
            return [Move(m0, m0 + self.move_time, rotate(g, Y_AXIS, math.radians(0.6 * self.rot)))]
        if self.subtype == "tonic" and self.tonic_rot != 0.0:
            return [Move(m0, m0 + self.move_time, rotate(g, Y_AXIS, math.radians(self.tonic_rot)))]
        return []

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        amp = self.amp * p.spasm_amp_scale
        if self.subtype == "clonus":
            calf = self._bursts(r, fs, t, amp)
            tib = crosstalk(calf, fs, 0.15) + self._bursts(r, fs, t, 0.2 * amp * self.ratio)
            return np.column_stack([calf, tib])
        calf_amp, tib_amp = amp, amp * self.ratio
        if self.subtype == "flexor":
            calf_amp, tib_amp = amp * 0.4 * self.ratio, amp
        calf = drive_emg(r, fs, t, self.kt, self.ka, SPASM_POOL, calf_amp, self.mod)
        tib = drive_emg(r, fs, t, self.kt, self.ka, SPASM_POOL, tib_amp, self.mod)
        return np.column_stack([calf + crosstalk(tib, fs, 0.1), tib + crosstalk(calf, fs, 0.1)])

    def _bursts(self, r: np.random.Generator, fs: float, t: F64, amp: float) -> F64:
        """Clonus: ~98 % of MUs fire once per cycle (Wallace 2005), jittered within the burst."""
        n_mu = int(r.integers(20, 50))
        spec = PoolSpec(n_mu=n_mu, sigma_s=SPASM_POOL.sigma_s)
        sd = self.width / 4.0
        thr = np.sort(r.uniform(0.0, 0.6, n_mu))
        trains = []
        for i in range(n_mu):
            fire = (r.random(self.bursts.size) < 0.98) & (self.burst_amp > thr[i])
            trains.append(np.sort(self.bursts[fire] + r.normal(0.0, sd, int(fire.sum())) - float(t[0])))
        x = pool_emg(r, fs, t.size, trains, thr, spec)
        sel = (t >= self.on) & (t <= self.off)
        rms = float(np.sqrt(np.mean(x[sel] ** 2))) if sel.any() else 0.0
        return x * (amp / rms) if rms > 0 else x

    def acc(self, fs: float, p: SimParams) -> F64:
        r = self.rng(2)
        t = self.times(fs)
        out = np.zeros((t.size, 3))
        if self.subtype == "clonus":
            env = np.interp(t, self.bursts, self.burst_amp, left=0.0, right=0.0)
            ph = np.interp(t, self.bursts, 2 * np.pi * np.arange(self.bursts.size))
            wave = np.sin(ph) + 0.3 * np.sin(2 * ph + 0.5)
            direction = np.array([0.3, 0.2, 1.0])
            out += np.outer(wave * env * self.clonus_g / 1.2, direction / np.linalg.norm(direction))
        elif self.subtype in ("flexor", "extensor"):
            out += transient(r, t, self.on + 0.1 + self.move_time / 2, self.move_time + 0.2, self.jerk, (1.0, 15.0), fs)
            if self.subtype == "flexor":
                out += transient(r, t, self.off + 1.0, 1.2, 0.3 * self.jerk, (1.0, 10.0), fs)
        elif self.subtype == "myoclonic":
            for s, w in zip(self.bursts, self.widths, strict=True):
                out += transient(r, t, s + w / 2, w + 0.15, r.uniform(0.05, 0.5), (2.0, 15.0), fs)
        else:
            env = np.interp(t, self.kt, self.ka, left=0.0, right=0.0)
            noise = band_noise(r, t.size, fs, 3.0, 12.0, 3)  # drawn before the level, as always
            tremor = r.uniform(*self.tremor_g)
            out += noise * (0.0 if self.still else tremor) * env[:, None]
            if self.tonic_rot != 0.0:
                peak = 0.3 * self.jerk
                out += transient(r, t, self.on + 0.1 + self.move_time / 2, self.move_time + 0.2, peak, (1.0, 15.0), fs)
        return out


# --------------------------------------------------------------------------------------------------
class PLMSeries(Event):
    kind = "plm"

    def __init__(self, t0: float, onsets: F64, durs: F64, seed: tuple[int, ...]) -> None:
        super().__init__(t0, float(onsets[-1] + durs[-1]) + 0.05, seed)
        r = self.rng(0)
        self.onsets, self.durs = onsets, durs
        self.amps = np.exp(r.uniform(math.log(10.0), math.log(100.0), onsets.size))
        self.calf_share = r.uniform(0.0, 0.3, onsets.size)
        self.rises = r.uniform(0.05, 0.2, onsets.size)
        self.acc_g = np.where(
            r.random(onsets.size) < 0.61, np.exp(r.uniform(math.log(0.005), math.log(0.1), onsets.size)), 0.0
        )

    def annotations(self) -> list[Annotation]:
        return [Annotation("plm", float(o), float(o + d)) for o, d in zip(self.onsets, self.durs, strict=True)]

    def is_scored(self) -> bool:
        return True

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        out = np.zeros((t.size, 2))
        items = zip(self.onsets, self.durs, self.amps, self.calf_share, self.rises, strict=True)
        for o, d, a, cs, rise in items:
            sel = (t >= o - 0.05) & (t < o + d + 0.05)
            kt, ka = trapezoid(float(o), float(rise), float(d), float(rise))
            ts = t[sel]
            tib = drive_emg(r, fs, ts, kt, ka, VOLUNTARY_POOL, float(a))
            calf = drive_emg(r, fs, ts, kt, ka, VOLUNTARY_POOL, float(a * cs)) if cs > 0.02 else 0.0 * tib
            out[sel, 0] += calf + crosstalk(tib, fs, 0.1)
            out[sel, 1] += tib
        return out

    def acc(self, fs: float, p: SimParams) -> F64:
        r = self.rng(2)
        t = self.times(fs)
        out = np.zeros((t.size, 3))
        for o, d, g in zip(self.onsets, self.durs, self.acc_g, strict=True):
            if g > 0:
                out += transient(r, t, float(o) + min(float(d), 2.0) / 2, min(float(d), 2.0), float(g), (0.5, 8.0), fs)
        return out


class Turn(Event):
    kind = "turn"

    def __init__(self, t0: float, dur: float, seed: tuple[int, ...]) -> None:
        super().__init__(t0, t0 + dur, seed)
        r = self.rng(0)
        self.move_t0 = t0 + r.uniform(0.1, 0.4) * dur
        self.move_t1 = min(self.move_t0 + r.uniform(0.5, 3.0), t0 + 0.95 * dur)
        self.amp_calf = log_uniform(r, 30.0, 500.0)
        self.amp_tib = self.amp_calf * r.uniform(0.3, 1.5)
        self.peak = r.uniform(0.1, 1.0)
        self.r_post = np.random.default_rng([*seed, 9])

    def plan_moves(self, g: F64) -> list[Move]:
        for _ in range(30):
            g_new = lying_posture(self.r_post)
            if angle_deg(g, g_new) >= 30.0:
                break
        else:
            g_new = rotate(g, X_AXIS, math.radians(self.r_post.uniform(30.0, 180.0)))
        return [Move(self.move_t0, self.move_t1, g_new)]

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        d = self.t1 - self.t0
        kt, ka = trapezoid(self.t0, min(0.3, d / 4), d, min(0.5, d / 4))
        mod = (r.uniform(0.5, 2.0), 0.4, r.uniform(0, 6.28))
        calf = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, self.amp_calf, mod)
        tib = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, self.amp_tib, mod)
        return np.column_stack([calf, tib])

    def acc(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        c = 0.5 * (self.move_t0 + self.move_t1)
        return transient(self.rng(2), t, c, self.move_t1 - self.move_t0 + 0.4, self.peak, (0.5, 10.0), fs)


class Voluntary(Event):
    kind = "voluntary"

    def __init__(self, t0: float, dur: float, seed: tuple[int, ...]) -> None:
        super().__init__(t0, t0 + dur, seed)
        r = self.rng(0)
        self.amp = log_uniform(r, 30.0, 300.0)
        self.share = r.uniform(0.1, 1.0)
        self.calf_first = bool(r.random() < 0.5)
        self.peak = r.uniform(0.05, 0.5)

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        d = self.t1 - self.t0
        kt, ka = trapezoid(self.t0, min(0.3, d / 4), d, min(0.3, d / 4))
        mod = (r.uniform(0.3, 2.0), 0.5, r.uniform(0, 6.28))
        a = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, self.amp, mod)
        b = drive_emg(r, fs, t, kt, ka, VOLUNTARY_POOL, self.amp * self.share, mod)
        return np.column_stack([a, b] if self.calf_first else [b, a])

    def acc(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        d = self.t1 - self.t0
        return transient(self.rng(2), t, self.t0 + d / 2, d, self.peak, (0.3, 5.0), fs)


class RealVoluntary(Event):
    """A stretch of *real* voluntary leg EMG (UCI lower-limb, see ``_real``), two channels of one file."""

    kind = "voluntary"

    def __init__(self, t0: float, x: F64, seed: tuple[int, ...]) -> None:
        super().__init__(t0, t0 + x.shape[0] / 1000.0, seed)
        r = self.rng(0)
        self.x = x * log_uniform(r, 0.4, 2.5)
        self.swap = bool(r.random() < 0.5)
        self.peak = r.uniform(0.05, 0.5) if r.random() < 0.7 else 0.0

    def emg(self, fs: float, p: SimParams) -> F64:
        from ._real import to_rate

        i0, i1 = self.span(fs)
        y = to_rate(self.x, fs)
        out = np.zeros((i1 - i0, 2))
        m = min(out.shape[0], y.shape[0])
        out[:m] = y[:m, ::-1] if self.swap else y[:m]
        return out

    def acc(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        if self.peak <= 0:
            return np.zeros((t.size, 3))
        d = self.t1 - self.t0
        return transient(self.rng(2), t, self.t0 + d / 2, d, self.peak, (0.3, min(5.0, 0.4 * fs)), fs)


class Fasciculation(Event):
    kind = "fasciculation"

    def __init__(self, t0: float, dur: float, seed: tuple[int, ...]) -> None:
        r = np.random.default_rng([*seed, 0])
        rate = log_uniform(r, 0.1, 80.0) / 60.0
        n = max(2, int(r.poisson(rate * dur)))
        times = np.sort(r.uniform(t0, t0 + dur, n))
        self.units = int(r.integers(1, 6))
        unit_of = r.integers(0, self.units, n)
        dbl = r.random(n) < 0.08
        t_all = np.concatenate((times, times[dbl] + r.uniform(0.032, 0.035, int(dbl.sum()))))
        u_all = np.concatenate((unit_of, unit_of[dbl]))
        order = np.argsort(t_all, kind="stable")
        self.twitch_t, self.unit_of = t_all[order], u_all[order]
        self.peaks = np.exp(r.uniform(math.log(20.0), math.log(300.0), self.units))
        self.sigmas = r.uniform(1.0e-3, 4.0e-3, self.units)
        self.mixes = r.uniform(0.0, 1.0, self.units)
        self.chan = int(r.integers(0, 2))
        super().__init__(float(self.twitch_t[0]) - 0.03, float(self.twitch_t[-1]) + 0.03, seed)

    def annotations(self) -> list[Annotation]:
        return [Annotation("fasciculation", self.t0 + 0.015, self.t1 - 0.015)]

    def emg(self, fs: float, p: SimParams) -> F64:
        i0, i1 = self.span(fs)
        out = np.zeros((i1 - i0, 2))
        for u in range(self.units):
            tpl = muap(fs, float(self.sigmas[u]), float(self.mixes[u])) * float(self.peaks[u])
            half = tpl.size // 2
            imp = np.zeros(i1 - i0)
            idx = np.round(self.twitch_t[self.unit_of == u] * fs).astype(np.int64) - i0
            idx = idx[(idx >= 0) & (idx < imp.size)]
            np.add.at(imp, idx, 1.0)
            x = np.convolve(imp, tpl)[half : half + imp.size]
            out[:, self.chan] += x
            out[:, 1 - self.chan] += crosstalk(x, fs, 0.1)
        return out


class Artifact(Event):
    kind = "artifact"

    def __init__(self, t0: float, dur: float, seed: tuple[int, ...]) -> None:
        super().__init__(t0, t0 + dur, seed)
        r = self.rng(0)
        self.amp = log_uniform(r, 50.0, 5000.0)
        self.share = r.uniform(0.0, 1.0)
        self.peak = r.uniform(0.1, 1.0)

    def emg(self, fs: float, p: SimParams) -> F64:
        r = self.rng(1)
        t = self.times(fs)
        d = self.t1 - self.t0
        w = np.sin(np.pi * np.clip((t - self.t0) / d, 0, 1)) ** 2
        x = band_noise(r, t.size, fs, 0.5, min(20.0, 0.4 * fs), 2) * w[:, None]
        m = np.max(np.abs(x), axis=0)
        m[m == 0] = 1.0
        return np.asarray(x / m * np.array([self.amp, self.amp * self.share]), dtype=np.float64)

    def acc(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        d = self.t1 - self.t0
        return transient(self.rng(2), t, self.t0 + d / 2, d, self.peak, (1.0, 20.0), fs)


class Pop(Event):
    kind = "pop"

    def __init__(self, t0: float, seed: tuple[int, ...]) -> None:
        r = np.random.default_rng([*seed, 0])
        self.tau = log_uniform(r, 0.05, 1.0)
        self.amp = log_uniform(r, 100.0, 10000.0) * (1.0 if r.random() < 0.5 else -1.0)
        self.chan = int(r.integers(0, 2))
        super().__init__(t0, t0 + 6.0 * self.tau, seed)

    def annotations(self) -> list[Annotation]:
        return [Annotation("pop", self.t0, self.t0 + 3.0 * self.tau)]

    def emg(self, fs: float, p: SimParams) -> F64:
        t = self.times(fs)
        out = np.zeros((t.size, 2))
        out[:, self.chan] = self.amp * np.exp(-(t - self.t0) / self.tau)
        return out


class LeadOff(Event):
    kind = "lead_off"

    def __init__(self, t0: float, dur: float, seed: tuple[int, ...], rail_uv: float) -> None:
        super().__init__(t0, t0 + dur, seed)
        r = self.rng(0)
        chan = int(r.integers(0, 2))
        level = float(r.choice([0.0, rail_uv, -rail_uv]))
        self.override = (chan, level)
