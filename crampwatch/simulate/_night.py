"""One simulated night: event plan, background (amplifier noise, mains, ECG, posture) and chunked render.

Chunk invariance: nothing is filtered across a chunk boundary. Background noise lives in fixed 10 s
blocks seeded by ``(seed, block)``; its 1/f part is an FIR of the white driver that reaches back into the
previous block (which is regenerated from its own seed), so it is continuous and exact. Mains and ECG
are evaluated at absolute sample times; events render their whole support from their own seeds; the
posture is a planned piecewise schedule evaluated at absolute times. ``render(a, b)`` returns EMG
samples ``ceil(a*fs) .. ceil(b*fs)-1`` (same rule for ACC), so consecutive chunks concatenate exactly.

Rest (physiology.md §1, §7): floor 1-5 µV white + 1/f below 20 Hz; mains 50/60 Hz plus 2nd/3rd
harmonics; ECG bleed as a QRS-like template at jittered RR intervals; |acc| noise 1-2 mg; posture
side 54 % / back 38 % / front 7 %, changing ~1.6 times/h.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import OrderedDict

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from ..frames import StreamKind
from ..recording import Annotation, Recording, Signal
from ._events import (
    SPASM_SUBTYPES,
    Artifact,
    Cramp,
    Event,
    Fasciculation,
    LeadOff,
    LegMovement,
    Move,
    PLMSeries,
    Pop,
    Precursor,
    RealVoluntary,
    Residual,
    Spasm,
    Turn,
    Voluntary,
    Wake,
    draw_spasm_length,
    log_uniform,
    lying_posture,
)
from ._params import TRAIN_RANGES, ParamRanges, SimParams
from ._real import RealPool, quiet_tile, real_pool
from ._synth import F64, sample_index, slerp, smooth_step

log = logging.getLogger(__name__)

BLOCK_S = 10.0
SCORED_GAP_S = 20.0
OTHER_GAP_S = 2.0
EDGE_S = 1.0
EMG_NAMES = ("calf", "tibialis")
ACC_NAMES = ("x", "y", "z")


@functools.cache
def _warn_no_real_data() -> None:
    log.warning("no real recordings found (set $CRAMP_REAL_DATA): real-floor nights use the synthetic floor")


class _Timeline:
    """Non-overlapping placement of event blocks inside the night."""

    def __init__(self, duration: float, rng: np.random.Generator) -> None:
        self.duration = duration
        self.rng = rng
        self.taken: list[tuple[float, float, bool]] = []

    def place(self, length: float, scored: bool, tries: int = 300) -> float | None:
        lo, hi = EDGE_S, self.duration - EDGE_S - length
        if hi < lo:
            return None
        for _ in range(tries):
            s = float(self.rng.uniform(lo, hi))
            if self.free(s, s + length, scored):
                self.taken.append((s, s + length, scored))
                return s
        return None

    def free(self, a: float, b: float, scored: bool) -> bool:
        for s, e, sc in self.taken:
            gap = SCORED_GAP_S if (scored and sc) else OTHER_GAP_S
            if a < e + gap and s < b + gap:
                return False
        return True


def _count(rng: np.random.Generator, per_h: float, hours: float, density: float) -> int:
    return int(rng.poisson(per_h * hours * density))


def plan_events(duration: float, seed: int, p: SimParams, density: float, pool: RealPool | None = None) -> list[Event]:
    """Plan every event of the night (cramps and spasms first, so they get the room)."""
    rng = np.random.default_rng([seed, 1])
    tl = _Timeline(duration, rng)
    hours = duration / 3600.0
    events: list[Event] = []
    counter = [0]

    def sub() -> tuple[int, ...]:
        counter[0] += 1
        return (seed, 1000 + counter[0])

    n_cramp = _count(rng, p.cramp_per_h, hours, density)
    n_spasm = _count(rng, p.spasm_per_h, hours, density)
    if density >= 3.0:
        n_cramp, n_spasm = max(1, n_cramp), max(1, n_spasm)

    ev = p.events
    for _ in range(n_cramp):
        dur = min(log_uniform(rng, *ev.cramp_dur_s), 0.5 * duration)
        pre = rng.uniform(20.0, 60.0) if rng.random() < p.precursor_prob else 0.0
        pre = min(pre, 0.1 * duration)
        # The pain wakes the sleeper while the cramp goes on (delay after onset); one who sleeps through
        # it wakes at its end, or not at all.
        in_cramp = rng.random() < ev.wake_in_cramp_prob
        delay = log_uniform(rng, *ev.wake_delay_s) if in_cramp else math.inf
        wakes = in_cramp or rng.random() < 0.7
        after = min(rng.uniform(*ev.wake_after_s), 0.15 * duration)
        resid = rng.uniform(*ev.residual_s) if rng.random() < ev.residual_prob else 0.0
        resid_x = rng.uniform(*ev.residual_x_floor)
        offsite = rng.random() < ev.offsite_prob
        amp = log_uniform(rng, 50.0, 1000.0)
        if offsite:  # RMS a few times the floor, whatever the person's cramp_amp_scale
            amp = p.noise_floor_uv * log_uniform(rng, *ev.offsite_x_floor) / p.cramp_amp_scale
        for _shrink in range(6):
            start = tl.place(pre + dur + max(after, resid, 0.5), scored=True)
            if start is not None:
                break
            pre, dur, after, resid = pre * 0.6, dur * 0.6, after * 0.6, resid * 0.6
        else:
            continue
        on = start + pre
        if pre > 0:
            level = p.noise_floor_uv * math.sqrt(rng.uniform(2.0, 6.0) ** 2 - 1.0)
            events.append(Precursor(start, on, sub(), level))
        events.append(Cramp(on, dur, sub(), amp, ev))
        if wakes:
            wake_on = on + min(delay, dur)
            events.append(Wake(wake_on, on + dur + after, sub(), on + dur, ev))
        if resid > 0:
            events.append(Residual(on + dur, on + dur + resid, sub(), resid_x))

    for _ in range(n_spasm):
        mix = np.asarray(p.spasm_mix, dtype=np.float64)
        subtype = str(rng.choice(SPASM_SUBTYPES, p=mix / mix.sum()))
        cap = max(1.0, 0.15 * duration)
        dur, support = draw_spasm_length(rng, subtype, cap, ev)
        amp = log_uniform(rng, *ev.spasm_uv)
        for _shrink in range(6):
            start = tl.place(support + 0.1, scored=True)
            if start is not None:
                break
            dur, support = max(0.5, dur * 0.6), max(0.6, support * 0.6)
        else:
            continue
        events.append(Spasm(start, dur, support, subtype, sub(), amp, ev))

    for _ in range(_count(rng, p.plm_series_per_h, hours, density)):
        n = int(rng.integers(4, 30))
        durs = np.clip(rng.lognormal(math.log(2.7), 0.55, n), 0.5, 10.0)
        gaps = np.clip(rng.lognormal(math.log(22.0), 0.5, n - 1), 5.0, 90.0)
        gaps = np.maximum(gaps, durs[:-1] + 2.0)
        onsets = np.concatenate(([0.0], np.cumsum(gaps)))
        length = float(onsets[-1] + durs[-1]) + 0.2
        start = tl.place(length, scored=True)
        if start is not None:
            events.append(PLMSeries(start, onsets + start, durs, sub()))

    # isolated leg movements (no series): the windows look like a PLM's, the label says they are not one
    for _ in range(_count(rng, ev.lm_per_h, hours, density)):
        d = float(np.clip(rng.lognormal(math.log(2.7), 0.55), 0.5, 10.0))
        start = tl.place(d + 0.1, scored=True)
        if start is not None:
            events.append(LegMovement(start, d, sub()))

    simple: list[tuple[float, str]] = [
        (p.turn_per_h, "turn"),
        (p.voluntary_per_h, "voluntary"),
        (p.artifact_per_h, "artifact"),
        (p.pop_per_h, "pop"),
        (p.lead_off_per_h, "lead_off"),
        (p.fasciculation_per_h, "fasciculation"),
    ]
    for rate, kind in simple:
        for _ in range(_count(rng, rate, hours, density)):
            if kind == "turn" or kind == "voluntary":
                d = rng.uniform(1.0, 10.0)
            elif kind == "artifact":
                d = rng.uniform(0.1, 2.0)
            elif kind == "pop":
                d = 6.0
            elif kind == "lead_off":
                d = rng.uniform(5.0, 120.0)
            else:
                d = rng.uniform(60.0, 600.0)
            start = tl.place(d, scored=False)
            if start is None:
                continue
            if kind == "turn":
                events.append(Turn(start, d, sub()))
            elif kind == "voluntary":
                events.append(Voluntary(start, d, sub()))
            elif kind == "artifact":
                events.append(Artifact(start, d, sub()))
            elif kind == "pop":
                events.append(Pop(start, sub()))
            elif kind == "lead_off":
                events.append(LeadOff(start, d, sub(), p.rail_uv))
            else:
                events.append(Fasciculation(start, d, sub()))
    if pool is not None and pool.active:
        for _ in range(_count(rng, p.real_voluntary_per_h, hours, density)):
            x = pool.active[int(rng.integers(len(pool.active)))]
            n = min(x.shape[0], round(rng.uniform(3.0, 20.0) * 1000.0))
            a = int(rng.integers(0, x.shape[0] - n + 1))
            start = tl.place(n / 1000.0 + 0.1, scored=False)
            if start is not None:
                events.append(RealVoluntary(start, x[a : a + n], sub()))
    events.sort(key=lambda e: (e.t0, e.kind))
    return events


LF_RATE = 100.0  # grid rate of the 1/f background component (Hz); 1000 points per block
LF_PER_BLOCK = int(LF_RATE * BLOCK_S)


def _lf_kernel() -> F64:
    """FIR (at ``LF_RATE``) shaping white noise to ~1/f between 0.3 and 20 Hz, unit output RMS."""
    nyq = LF_RATE / 2.0
    freqs = np.array([0.0, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 25.0, nyq])
    gains = np.concatenate(([0.0, 0.0], 1.0 / np.sqrt(freqs[2:9]), [0.0, 0.0]))
    k = np.asarray(sps.firwin2(201, freqs / nyq, gains), dtype=np.float64)
    return k / float(np.sqrt(np.sum(k**2)))


LF_KERNEL = _lf_kernel()


def _mains_period(fs: float, f: float) -> int | None:
    """Samples in one exact period of ``f`` sampled at ``fs`` (both integral), else None."""
    if fs != round(fs) or f != round(f) or f <= 0:
        return None
    period = round(fs) // math.gcd(round(fs), round(f))
    return period if period <= 200_000 else None


def _qrs(x: F64) -> F64:
    """QRS-like template (peak ~1, ~100 ms) plus a small T wave; ``x`` in seconds from the R peak."""
    return np.asarray(
        -0.15 * np.exp(-0.5 * ((x + 0.025) / 0.008) ** 2)
        + np.exp(-0.5 * (x / 0.010) ** 2)
        - 0.35 * np.exp(-0.5 * ((x - 0.028) / 0.009) ** 2)
        + 0.12 * np.exp(-0.5 * ((x - 0.25) / 0.04) ** 2),
        dtype=np.float64,
    )


QRS_PRE, QRS_POST = 0.08, 0.40


class Night:
    """A simulated night. Construction plans everything; :meth:`render` synthesises any time span."""

    def __init__(
        self,
        duration_s: float,
        seed: int,
        params: SimParams | None = None,
        ranges: ParamRanges = TRAIN_RANGES,
        *,
        event_density: float = 1.0,
    ) -> None:
        if not duration_s > 0:
            raise ValueError(f"duration must be positive, got {duration_s}")
        self.duration_s = float(duration_s)
        self.seed = int(seed)
        self.params: SimParams = params if params is not None else ranges.sample(np.random.default_rng(seed))
        self.event_density = event_density
        p = self.params
        self._real: RealPool | None = None
        if p.real_floor or p.real_voluntary_per_h > 0:
            self._real = real_pool()
            if self._real is None:
                _warn_no_real_data()
        self.events = plan_events(self.duration_s, self.seed, p, event_density, self._real)
        self.annotations: tuple[Annotation, ...] = tuple(
            sorted((a for e in self.events for a in e.annotations()), key=lambda a: (a.onset_s, a.type))
        )
        rng = np.random.default_rng([self.seed, 2])
        # posture schedule
        self._g0 = lying_posture(rng)
        g = self._g0
        self._moves: list[tuple[float, float, F64, F64]] = []
        for e in self.events:
            for m in e.plan_moves(g):
                self._add_move(m, g)
                g = m.g_new
        self._move_t0 = np.array([m[0] for m in self._moves])
        # mains and ECG
        nch = p.n_emg_channels
        self._mains_gain = np.concatenate(([1.0], rng.uniform(0.4, 1.5, nch - 1)))
        self._mains_phase = rng.uniform(0.0, 2 * np.pi, (nch, 3))
        self._harm = (1.0, 0.12, 0.3)
        self._ecg_gain = np.concatenate(([1.0], rng.uniform(-1.0, 1.0, nch - 1)))
        rr_mean = 60.0 / p.ecg_bpm
        n_beats = int((self.duration_s + 2.0) / rr_mean * 1.3) + 4
        k = np.arange(n_beats)
        resp = np.sin(2 * np.pi * k / rng.uniform(3.5, 5.0))  # respiratory sinus arrhythmia
        rr = rr_mean * (1.0 + 0.04 * resp + 0.02 * rng.standard_normal(n_beats))
        self._beats = rng.uniform(0.0, rr_mean) + np.concatenate(([0.0], np.cumsum(rr[:-1])))
        self._beats = self._beats[self._beats < self.duration_s + QRS_PRE + 1.0]
        self._beat_first = np.array(
            [sample_index(float(tb) - QRS_PRE, p.emg_rate_hz) for tb in self._beats], dtype=np.int64
        )
        # extra channels (beyond calf / tibialis) see a fixed mixture of the two muscles
        self._mix = np.zeros((2, nch))
        self._mix[0, 0] = 1.0
        if nch > 1:
            self._mix[1, 1] = 1.0
        if nch > 2:
            self._mix[:, 2:] = rng.uniform(0.0, 0.6, (2, nch - 2))
        self._real_electrodes: list[int] | None = None
        if p.real_floor and self._real is not None and self._real.quiet:
            pick = np.random.default_rng([self.seed, 6]).integers(len(self._real.quiet), size=nch)
            self._real_electrodes = [int(k) for k in pick]
        self._blocks: OrderedDict[int, F64] = OrderedDict()
        self._mains_table: F64 | None = None
        period = _mains_period(p.emg_rate_hz, p.mains_hz)
        if period is not None and p.mains_uv > 0:
            self._mains_table = self._mains_at(np.arange(period))
        self._cache: OrderedDict[tuple[int, str], F64 | None] = OrderedDict()

    # ---------------------------------------------------------------------------------------------
    def _add_move(self, m: Move, g_prev: F64) -> None:
        t0, t1 = m.t0, max(m.t1, m.t0 + 1e-3)
        if self._moves and t0 < self._moves[-1][1]:
            t0 = self._moves[-1][1]
            t1 = max(t1, t0 + 1e-3)
        self._moves.append((t0, t1, g_prev, m.g_new))

    def gravity(self, t: F64) -> F64:
        """Posture gravity reading (g) at absolute times ``t`` -> (k, 3)."""
        out = np.tile(self._g0, (t.size, 1))
        if not self._moves:
            return out
        j = np.searchsorted(self._move_t0, t, side="right") - 1
        after = np.array([m[3] for m in self._moves])
        has = j >= 0
        out[has] = after[j[has]]
        if t.size == 0:
            return out
        lo = max(0, int(j.min()))
        for jj in range(lo, int(j.max()) + 1):
            t0, t1, ga, gb = self._moves[jj]
            sel = (j == jj) & (t < t1)
            if sel.any():
                out[sel] = slerp(ga, gb, smooth_step((t[sel] - t0) / (t1 - t0)))
        return out

    def _block_bounds(self, b: int, fs: float) -> tuple[int, int]:
        return sample_index(b * BLOCK_S, fs), sample_index((b + 1) * BLOCK_S, fs)

    def _lf_driver(self, b: int) -> F64:
        """White driver of the 1/f component for block ``b`` (>= -1), ``LF_PER_BLOCK`` grid points."""
        nch = self.params.n_emg_channels
        return np.random.default_rng([self.seed, 3, 1, b + 1]).standard_normal((LF_PER_BLOCK, nch))

    def _bg_block(self, b: int) -> F64:
        """Amplifier noise of block ``b``: white + 1/f (< 20 Hz), RMS ``noise_floor_uv`` (input-referred)."""
        hit = self._blocks.get(b)
        if hit is not None:
            self._blocks.move_to_end(b)
            return hit
        p = self.params
        fs = p.emg_rate_hz
        nch = p.n_emg_channels
        s, e = self._block_bounds(b, fs)
        if self._real is not None and self._real_electrodes is not None:
            # real resting sEMG, each channel one electrode's, scaled to this night's floor
            real = np.empty((e - s, nch))
            for c, k in enumerate(self._real_electrodes):
                rng = np.random.default_rng([self.seed, 3, 2, b + 1, c])
                real[:, c] = quiet_tile(self._real, k, e - s, fs, rng) * p.noise_floor_uv
            self._blocks[b] = real
            while len(self._blocks) > 4:
                self._blocks.popitem(last=False)
            return real
        r = p.lf_noise_ratio
        white = np.random.default_rng([self.seed, 3, 0, b + 1]).standard_normal((e - s, nch))
        white *= p.noise_floor_uv / math.sqrt(1.0 + r * r)
        if r > 0:
            # 1/f grid values for indices LF_PER_BLOCK*b .. LF_PER_BLOCK*(b+1)+1, an exact FIR of the
            # continuous driver (previous block for the history, next block for the last points).
            k = LF_KERNEL.size
            drv = np.concatenate((self._lf_driver(b - 1)[-(k - 1) :], self._lf_driver(b), self._lf_driver(b + 1)[:2]))
            grid = sps.oaconvolve(drv, LF_KERNEL[:, None], mode="valid", axes=0)
            u = np.arange(s, e) / fs * LF_RATE - LF_PER_BLOCK * b
            k0 = np.clip(np.floor(u).astype(np.int64), 0, grid.shape[0] - 2)
            frac = (u - k0)[:, None]
            lf = grid[k0] * (1.0 - frac) + grid[k0 + 1] * frac
            white += lf * (p.noise_floor_uv * r / math.sqrt(1.0 + r * r))
        self._blocks[b] = white
        while len(self._blocks) > 4:
            self._blocks.popitem(last=False)
        return white

    def _background_emg(self, i0: int, i1: int) -> F64:
        fs = self.params.emg_rate_hz
        out = np.empty((i1 - i0, self.params.n_emg_channels))
        if i1 <= i0:
            return out
        b = max(int(i0 // (BLOCK_S * fs)) - 1, 0)
        while True:
            s, e = self._block_bounds(b, fs)
            if s >= i1:
                break
            if e > i0:
                block = self._bg_block(b)
                a, z = max(s, i0), min(e, i1)
                out[a - i0 : z - i0] = block[a - s : z - s]
            b += 1
        return out

    def _mains_at(self, i: npt.NDArray[np.int64]) -> F64:
        p = self.params
        t = i / p.emg_rate_hz
        out = np.zeros((t.size, p.n_emg_channels))
        for h, rel in enumerate(self._harm, start=1):
            f = p.mains_hz * h
            if f >= 0.45 * p.emg_rate_hz:
                continue
            for c in range(p.n_emg_channels):
                out[:, c] += (math.sqrt(2) * p.mains_uv * rel * self._mains_gain[c]) * np.sin(
                    2 * np.pi * f * t + self._mains_phase[c, h - 1]
                )
        return out

    def _mains(self, i0: int, i1: int) -> F64:
        """Mains hum (50/60 Hz, RMS ``mains_uv``, 2nd and 3rd harmonics) at absolute sample times."""
        if self.params.mains_uv <= 0:
            return np.zeros((i1 - i0, self.params.n_emg_channels))
        idx = np.arange(i0, i1, dtype=np.int64)
        if self._mains_table is not None:
            return np.asarray(self._mains_table[idx % self._mains_table.shape[0]], dtype=np.float64)
        return self._mains_at(idx)

    def _ecg(self, i0: int, i1: int) -> F64:
        p = self.params
        fs = p.emg_rate_hz
        out = np.zeros((i1 - i0, p.n_emg_channels))
        if p.ecg_uv <= 0 or i1 <= i0:
            return out
        t_a, t_b = i0 / fs, i1 / fs
        lo = np.searchsorted(self._beats, t_a - QRS_POST - 1.0 / fs)
        hi = np.searchsorted(self._beats, t_b + QRS_PRE + 1.0 / fs)
        beats = self._beats[lo:hi]
        if beats.size == 0:
            return out
        length = math.ceil((QRS_PRE + QRS_POST) * fs) + 2
        first = self._beat_first[lo:hi]
        idx = first[:, None] + np.arange(length)[None, :]
        x = idx / fs - beats[:, None]
        ok = (idx >= i0) & (idx < i1) & (x <= QRS_POST)
        vals = _qrs(x[ok]) * p.ecg_uv
        tmp = np.zeros(i1 - i0)
        np.add.at(tmp, idx[ok] - i0, vals)
        out += tmp[:, None] * self._ecg_gain[None, :]
        return out

    def _event_wave(self, k: int, kind: str) -> F64 | None:
        key = (k, kind)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        e = self.events[k]
        p = self.params
        wave = e.emg(p.emg_rate_hz, p) if kind == "emg" else e.acc(p.acc_rate_hz, p)
        self._cache[key] = wave
        while len(self._cache) > 16:
            self._cache.popitem(last=False)
        return wave

    # ---------------------------------------------------------------------------------------------
    def render(self, start_s: float, stop_s: float) -> tuple[F64, F64]:
        """EMG (µV, (n, n_emg_channels)) and ACC (g, (m, 3)) for [start_s, stop_s)."""
        if start_s < 0 or stop_s < start_s:
            raise ValueError(f"bad span [{start_s}, {stop_s})")
        p = self.params
        fe, fa = p.emg_rate_hz, p.acc_rate_hz
        i0, i1 = sample_index(start_s, fe), sample_index(stop_s, fe)
        j0, j1 = sample_index(start_s, fa), sample_index(stop_s, fa)
        emg = self._background_emg(i0, i1)
        emg += self._mains(i0, i1)
        emg += self._ecg(i0, i1)
        acc = self.gravity(np.arange(j0, j1) / fa)
        overrides: list[tuple[int, int, int, float]] = []
        for k, e in enumerate(self.events):
            s, z = e.span(fe)
            if s < i1 and z > i0:
                if e.override is not None:
                    overrides.append((max(s, i0) - i0, min(z, i1) - i0, *e.override))
                else:
                    w = self._event_wave(k, "emg")
                    if w is not None:
                        a, b = max(s, i0), min(z, i1)
                        emg[a - i0 : b - i0] += w[a - s : b - s] @ self._mix
            s, z = e.span(fa)
            if s < j1 and z > j0 and e.override is None:
                w = self._event_wave(k, "acc")
                if w is not None:
                    a, b = max(s, j0), min(z, j1)
                    acc[a - j0 : b - j0] += w[a - s : b - s]
        emg *= p.gain
        np.clip(emg, -p.rail_uv, p.rail_uv, out=emg)
        for a, b, ch, level in overrides:
            if ch < emg.shape[1]:
                emg[a:b, ch] = level
        emg = np.round(emg / p.adc_resolution_uv) * p.adc_resolution_uv
        acc += self._acc_noise(j0, j1)
        return emg, acc

    def _acc_noise(self, j0: int, j1: int) -> F64:
        fs = self.params.acc_rate_hz
        out = np.empty((j1 - j0, 3))
        if j1 <= j0:
            return out
        b = max(int(j0 // (BLOCK_S * fs)) - 1, 0)
        while True:
            s, e = self._block_bounds(b, fs)
            if s >= j1:
                break
            if e > j0:
                x = np.random.default_rng([self.seed, 4, b + 1]).standard_normal((e - s, 3))
                a, z = max(s, j0), min(e, j1)
                out[a - j0 : z - j0] = x[a - s : z - s] * self.params.acc_noise_g
            b += 1
        return out

    def recording(self) -> Recording:
        """The whole night as a :class:`Recording` (rendered in 10-minute chunks)."""
        p = self.params
        n_e = sample_index(self.duration_s, p.emg_rate_hz)
        n_a = sample_index(self.duration_s, p.acc_rate_hz)
        emg = np.empty((n_e, p.n_emg_channels))
        acc = np.empty((n_a, 3))
        chunk = 600.0
        t = 0.0
        while t < self.duration_s:
            stop = min(t + chunk, self.duration_s)
            e, a = self.render(t, stop)
            i, j = sample_index(t, p.emg_rate_hz), sample_index(t, p.acc_rate_hz)
            emg[i : i + e.shape[0]] = e
            acc[j : j + a.shape[0]] = a
            t = stop
        names = EMG_NAMES + tuple(f"emg{k}" for k in range(2, p.n_emg_channels))
        return Recording(
            emg=Signal(StreamKind.EMG, p.emg_rate_hz, names[: p.n_emg_channels], emg),
            acc=Signal(StreamKind.ACC, p.acc_rate_hz, ACC_NAMES, acc),
            annotations=self.annotations,
            source=f"simulate(seed={self.seed})",
            meta={"seed": self.seed, "params": p, "event_density": self.event_density},
        )


def simulate(
    duration_s: float,
    seed: int,
    params: SimParams | None = None,
    ranges: ParamRanges = TRAIN_RANGES,
    *,
    event_density: float = 1.0,
) -> Recording:
    """Simulate a whole night and return it as a :class:`Recording`."""
    return Night(duration_s, seed, params, ranges, event_density=event_density).recording()
