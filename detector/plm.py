"""Periodic limb movements (PLM), scored by the AASM 2018 / WASM 2016 rules on the 50 ms EMG envelope.

    leg movement (LM)   starts when the EMG rises >= 8 µV above the resting level; ends at the start of
                        the first >= 0.5 s with EMG <= 2 µV above resting; lasts 0.5-10 s
    PLM series          >= 4 consecutive LMs with onset-to-onset intervals of 5-90 s (WASM: 10-90 s)
    PLM index           periodic LMs per hour of recording

The rules are in absolute microvolts, as the scoring manuals define them (the one place CrampWatch is
not gain-free). As in SEV's LM detector (physiology.md §7) the envelope is a 0.15 s RMS and the onset
threshold grows with the noise floor nf: nf * (1 + ln(nf + 1)) + 8 µV, which is 8 µV above a quiet
amplifier but keeps a noisy one from turning noise into movements. Resting level = the pipeline's
per-channel resting baseline. Channels are muscles of one leg, so an LM on any channel is an LM of the
leg. LMs during a cramp or spasm (windows the model calls involuntary) are not LMs: they belong to that
event; nor are movements the model calls voluntary or artifacts (turning, waking, electrode pops).
Recordings with a resting level above 30 µV are too noisy to score (as S-PLMAD does).

The scorer runs on the pipeline's decided timeline, after the model, so it knows which windows are
involuntary; it is sequential over segments, so chunking never changes its output. A PLM is reported
once its series is complete, i.e. up to 90 s after its last movement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

ONSET_UV = 8.0
SMOOTH_SEGMENTS = 3  # 0.15 s RMS envelope from 50 ms segments
OFFSET_UV = 2.0
OFFSET_HOLD_S = 0.5
MIN_LM_S = 0.5
MAX_LM_S = 10.0
MIN_SERIES = 4
MAX_INTERVAL_S = 90.0
MAX_REST_UV = 30.0
MIN_INTERVAL_S = {"aasm": 5.0, "wasm": 10.0}


@dataclass(frozen=True, slots=True)
class LegMovement:
    onset_s: float
    offset_s: float
    peak_uv: float


class PlmScorer:
    """Finds leg movements in the envelope and reports the periodic ones."""

    def __init__(self, seg_s: float, *, rules: str = "aasm") -> None:
        if rules not in MIN_INTERVAL_S:
            raise ValueError(f"rules must be one of {sorted(MIN_INTERVAL_S)}, not {rules!r}")
        self.seg_s = seg_s
        self.min_interval_s = MIN_INTERVAL_S[rules]
        self._hold = max(1, round(OFFSET_HOLD_S / seg_s))
        self._next = 0  # index of the next segment
        self._start: int | None = None  # first segment of the LM in progress
        self._quiet = 0  # quiet segments in a row inside the LM
        self._peak = 0.0
        self._blocked = False  # the LM in progress touches an involuntary window or unscorable rest
        self._series: list[LegMovement] = []
        self._carry: FloatArray | None = None  # last segments' mean squares, for the 0.15 s envelope
        self.leg_movements = 0  # all valid LMs, periodic or not

    def push(self, seg_rms: FloatArray, baseline: FloatArray, involuntary: npt.NDArray[np.bool_]) -> list[LegMovement]:
        """Segments of consecutive windows: ``seg_rms (n, segs, ch)``, ``baseline (n, ch)``, ``involuntary (n,)``.

        Returns the periodic leg movements whose series closed in these segments.
        """
        n, per, ch = seg_rms.shape
        squares = (seg_rms**2).reshape(-1, ch)
        if self._carry is None:
            self._carry = np.repeat(squares[:1], SMOOTH_SEGMENTS - 1, axis=0)
        padded = np.concatenate([self._carry, squares])
        self._carry = padded[-(SMOOTH_SEGMENTS - 1) :]
        windows = np.lib.stride_tricks.sliding_window_view(padded, SMOOTH_SEGMENTS, axis=0)
        envelope = np.sqrt(np.ascontiguousarray(windows).mean(axis=2))  # (segments, ch)
        floor = np.repeat(baseline, per, axis=0)
        onset = floor * (1.0 + np.log1p(floor)) + ONSET_UV
        above = (envelope >= onset).any(axis=1)
        quiet = (envelope - floor <= OFFSET_UV).all(axis=1)
        level = envelope.max(axis=1)
        blocked = np.repeat(involuntary | (baseline.min(axis=1) > MAX_REST_UV), per)
        out: list[LegMovement] = []
        i = 0
        total = n * per
        while i < total:
            if self._start is None:
                # Idle: jump straight to the next onset; nothing happens between onsets.
                rest = np.flatnonzero(above[i:])
                if rest.size == 0:
                    out += self._close_stale((self._next + total) * self.seg_s)
                    break
                i += int(rest[0])
                out += self._close_stale((self._next + i) * self.seg_s)
                self._start, self._quiet, self._peak, self._blocked = self._next + i, 0, 0.0, False
            self._peak = max(self._peak, float(level[i]))
            self._blocked |= bool(blocked[i])
            self._quiet = self._quiet + 1 if quiet[i] else 0
            if self._quiet >= self._hold:
                out += self._end_lm(self._next + i - self._quiet + 1)
            i += 1
        self._next += total
        return out

    def finish(self) -> list[LegMovement]:
        out = self._end_lm(self._next) if self._start is not None else []
        return out + self._close_series()

    def _end_lm(self, end_seg: int) -> list[LegMovement]:
        assert self._start is not None
        lm = LegMovement(self._start * self.seg_s, end_seg * self.seg_s, self._peak)
        blocked = self._blocked
        self._start = None
        duration = lm.offset_s - lm.onset_s
        if blocked or not MIN_LM_S <= duration <= MAX_LM_S:
            return []
        self.leg_movements += 1
        out: list[LegMovement] = []
        if self._series:
            interval = lm.onset_s - self._series[-1].onset_s
            if not self.min_interval_s <= interval <= MAX_INTERVAL_S:
                out = self._close_series()
        self._series.append(lm)
        return out

    def _close_stale(self, now_s: float) -> list[LegMovement]:
        """A series whose last LM is more than 90 s old can no longer grow."""
        if self._series and now_s - self._series[-1].onset_s > MAX_INTERVAL_S:
            return self._close_series()
        return []

    def _close_series(self) -> list[LegMovement]:
        series, self._series = self._series, []
        return series if len(series) >= MIN_SERIES else []
