"""One device's detection pipeline: samples in, events and summaries out.

    EMG/ACC samples -> windows (windows.py) -> features (features/) -> model -> segments -> events

The same object serves the live service (fed frame by frame from MQTT) and offline detection (fed a file
in large chunks). Every stage is either sequential over samples with carried state, or computed per window
from that window's own neighbourhood, so the events do not depend on how the samples were chunked.

Per-recording normalisation: each EMG channel's RMS is divided by that channel's *resting baseline*, the
20th percentile of its 1 s RMS over the last 30 minutes, re-estimated every 10 s. A cramp is then "far
above this person's own rest on this sensor", whatever the gain or noise floor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .events import Event, Summary
from .features import ACC_NAMES, EMG_NAMES, NAMES, acc_window_features, context_features, emg_window_features
from .features.context import FUTURE, PAST
from .features.emg import emg_window_rms
from .model import Model
from .segment import Segment, Segmenter, SegmentRules
from .windows import AccWindower, EmgWindower

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]

BASELINE_PERCENTILE = 20.0
BASELINE_HISTORY = 3600  # windows: 30 min
BASELINE_EVERY = 20  # windows: 10 s
ACC_WAIT_S = 10.0  # how far EMG may run ahead of a silent accelerometer before windows go without ACC
SCORED = ("cramp", "spasm")
BASE_NAMES = EMG_NAMES + ACC_NAMES


@dataclass
class PipelineOutput:
    """What one push produced."""

    events: list[Event] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    features: FloatArray | None = None  # (n, len(NAMES)) of the windows decided in this push
    window_end_s: FloatArray | None = None

    def extend(self, other: PipelineOutput) -> None:
        self.events.extend(other.events)
        self.summaries.extend(other.summaries)
        if other.features is not None and other.window_end_s is not None:
            if self.features is None or self.window_end_s is None:
                self.features, self.window_end_s = other.features, other.window_end_s
            else:
                self.features = np.vstack([self.features, other.features])
                self.window_end_s = np.concatenate([self.window_end_s, other.window_end_s])


class DevicePipeline:
    """Detection state for one (patient, device).

    Args:
        model: the classifier; ``None`` computes features only (used to build training data).
        start_ns: device time of the first EMG sample; events carry it so sinks can place them in time.
        expect_acc: ``True`` when an accelerometer stream is known to come (offline file with one): windows
            wait for it however far behind it is. ``False`` when there is none. ``None`` (live, unknown):
            windows wait for it at most ``ACC_WAIT_S`` of EMG time.
    """

    def __init__(
        self,
        model: Model | None,
        *,
        patient: str = "offline",
        device: str = "file",
        start_ns: int = 0,
        expect_acc: bool | None = None,
        rules: SegmentRules | None = None,
        keep_features: bool = False,
    ) -> None:
        self.model = model
        self.patient = patient
        self.device = device
        self.start_ns = start_ns
        self.expect_acc = expect_acc
        self.keep_features = keep_features
        self._rules = rules
        self.emg: EmgWindower | None = None
        self.acc: AccWindower | None = None
        # Windows whose EMG part is computed, waiting for the accelerometer.
        self._wait_rows: list[FloatArray] = []
        self._wait_rms: list[FloatArray] = []
        self._wait_valid: list[npt.NDArray[np.bool_]] = []
        self._waiting_from = 0
        # Series of complete base rows, kept for the context span (PAST before, FUTURE after).
        self._series = np.zeros((0, len(BASE_NAMES)))
        self._gravity = np.zeros((0, 3))
        self._peak = np.zeros(0)
        self._valid = np.zeros(0, dtype=bool)
        self._series_first = 0  # window index of _series[0] (negative while edge padding is in it)
        self._decided = 0  # windows whose context features and probabilities are done
        self._rms_ring = np.zeros((BASELINE_HISTORY, 1))
        self._rms_count = 0
        self._baseline: FloatArray | None = None
        self._segmenter: Segmenter | None = None
        self._ended = False
        self._gap_windows: set[int] = set()

    # -- input -------------------------------------------------------------------------------------

    def push_emg(self, samples: FloatArray, rate_hz: float, *, valid: bool = True) -> PipelineOutput:
        """Add EMG samples in µV, ``(n, channels)``, continuing the stream without gaps.

        ``valid=False`` marks filler for lost frames: windows touching it report no data and no event.
        """
        if self.emg is None:
            self.emg = EmgWindower(rate_hz, samples.shape[1])
            self._rms_ring = np.zeros((BASELINE_HISTORY, samples.shape[1]))
            types = self.model.classes if self.model else SCORED
            self._segmenter = Segmenter(tuple(t for t in types if t in SCORED), self.emg.hop_s, self._rules)
        windows = self.emg.push(samples)
        if not valid:
            self._gap_windows.update(range(windows.first, windows.first + windows.count + 2))
        if windows.count:
            self._add_emg_windows(windows.first, windows.win, windows.env)
        return self._advance()

    def push_acc(self, samples: FloatArray, rate_hz: float, start_s: float) -> PipelineOutput:
        """Add accelerometer samples in g, ``(n, 3)``; ``start_s`` is the stream's first-sample time."""
        if self.acc is None:
            self.acc = AccWindower(rate_hz, start_s)
        self.acc.push(samples)
        return self._advance()

    def finish(self) -> PipelineOutput:
        """End of the recording: decide the remaining windows and close any open event."""
        self._ended = True
        out = self._advance()
        if self._segmenter is not None:
            out.events.extend(self._to_events(self._segmenter.finish()))
        return out

    # -- stages ------------------------------------------------------------------------------------

    def _add_emg_windows(self, first: int, win: FloatArray, env: FloatArray) -> None:
        assert self.emg is not None
        rms = emg_window_rms(win)
        baseline = self._baselines(first, rms)
        rows = emg_window_features(win, env, self.emg.rate_hz, self.emg.seg_s, rms, baseline)
        valid = np.array([first + i not in self._gap_windows for i in range(rows.shape[0])])
        self._wait_rows.append(rows)
        self._wait_rms.append(rms)
        self._wait_valid.append(valid)

    def _baselines(self, first: int, rms: FloatArray) -> FloatArray:
        """Resting RMS per channel for each new window, updated every BASELINE_EVERY windows."""
        out = np.empty_like(rms)
        for i in range(rms.shape[0]):
            k = first + i
            self._rms_ring[self._rms_count % BASELINE_HISTORY] = rms[i]
            self._rms_count += 1
            if self._baseline is None or k % BASELINE_EVERY == 0:
                filled = self._rms_ring[: min(self._rms_count, BASELINE_HISTORY)]
                self._baseline = np.percentile(filled, BASELINE_PERCENTILE, axis=0)
            out[i] = self._baseline
        return out

    def _advance(self) -> PipelineOutput:
        out = PipelineOutput()
        if self.emg is None or not self._wait_rows:
            if self._ended:
                out.extend(self._decide())
            return out
        rows = np.vstack(self._wait_rows)
        rms = np.vstack(self._wait_rms)
        valid = np.concatenate(self._wait_valid)
        ends = self.emg.window_ends_s(self._waiting_from, self._waiting_from + rows.shape[0])
        ready = self._acc_ready(ends)
        if ready:
            acc_rows, gravity = self._acc_features(ends[:ready])
            self._append_series(np.hstack([rows[:ready], acc_rows]), gravity, rms[:ready].max(axis=1), valid[:ready])
            out.summaries.extend(self._summaries(ends[:ready], rms[:ready], acc_rows[:, 0], valid[:ready]))
            self._wait_rows = [rows[ready:]] if ready < rows.shape[0] else []
            self._wait_rms = [rms[ready:]] if ready < rows.shape[0] else []
            self._wait_valid = [valid[ready:]] if ready < rows.shape[0] else []
            self._waiting_from += ready
        out.extend(self._decide())
        return out

    def _acc_ready(self, ends: FloatArray) -> int:
        """How many waiting windows can get their accelerometer part now."""
        if self._ended or self.expect_acc is False:
            return int(ends.shape[0])
        covered = self.acc.covered_until_s() if self.acc is not None else -np.inf
        n = int(np.searchsorted(ends, covered, side="right"))
        if self.expect_acc is None:
            # Live and unknown: an accelerometer that is absent or stalled holds windows back only so long.
            n = max(n, int(np.sum(ends <= ends[-1] - ACC_WAIT_S)))
        return n

    def _acc_features(self, ends: FloatArray) -> tuple[FloatArray, FloatArray]:
        if self.acc is None:
            return np.full((ends.shape[0], len(ACC_NAMES)), np.nan), np.full((ends.shape[0], 3), np.nan)
        win = self.acc.windows(ends)
        feats, gravity = acc_window_features(win, self.acc.rate_hz)
        self.acc.forget_before_s(float(ends[-1]))
        return feats, gravity

    def _append_series(
        self, rows: FloatArray, gravity: FloatArray, peak: FloatArray, valid: npt.NDArray[np.bool_]
    ) -> None:
        if self._series.shape[0] == 0:
            # Pad the start by repeating the first window, so early windows have a "past".
            self._series = np.repeat(rows[:1], PAST, axis=0)
            self._gravity = np.repeat(gravity[:1], PAST, axis=0)
            self._peak = np.zeros(PAST)
            self._valid = np.zeros(PAST, dtype=bool)
            self._series_first = -PAST
        self._series = np.vstack([self._series, rows])
        self._gravity = np.vstack([self._gravity, gravity])
        self._peak = np.concatenate([self._peak, peak])
        self._valid = np.concatenate([self._valid, valid])

    def _decide(self) -> PipelineOutput:
        """Context features, probabilities and segments for every window whose future is known."""
        out = PipelineOutput()
        n_known = self._series_first + self._series.shape[0]  # windows with a base row
        if self._ended and self._series.shape[0] and n_known > self._decided:
            # Pad the end by repeating the last window, so the last windows have a "future".
            pad = FUTURE
            self._series = np.vstack([self._series, np.repeat(self._series[-1:], pad, axis=0)])
            self._gravity = np.vstack([self._gravity, np.repeat(self._gravity[-1:], pad, axis=0)])
            self._peak = np.concatenate([self._peak, np.zeros(pad)])
            self._valid = np.concatenate([self._valid, np.zeros(pad, dtype=bool)])
            stop = n_known
        else:
            stop = n_known - FUTURE
        start = self._decided
        if stop <= start:
            return out
        a, b = start - self._series_first, stop - self._series_first
        ctx = context_features(self._series, BASE_NAMES, self._gravity, a, b)
        x = np.hstack([self._series[a:b], ctx])
        valid = self._valid[a:b]
        if self.keep_features:
            assert self.emg is not None
            out.features = x
            out.window_end_s = self.emg.window_ends_s(start, stop)
        if self.model is not None and self._segmenter is not None:
            probs = self.model.probabilities(x, self._segmenter.types)
            out.events.extend(self._to_events(self._segmenter.push(probs, self._peak[a:b], valid)))
        self._decided = stop
        # Keep only what future context needs: PAST rows before the next undecided window.
        drop = (stop - PAST) - self._series_first
        if drop > 0:
            self._series = self._series[drop:]
            self._gravity = self._gravity[drop:]
            self._peak = self._peak[drop:]
            self._valid = self._valid[drop:]
            self._series_first += drop
        return out

    # -- output ------------------------------------------------------------------------------------

    def _to_events(self, segments: list[Segment]) -> list[Event]:
        assert self.emg is not None
        hop = self.emg.hop_s
        events = []
        for seg in segments:
            # A window's centre is 1 hop before its end; an event spans half a hop either side.
            onset = self.emg.window_end_s(seg.first) - 1.5 * hop
            offset = self.emg.window_end_s(seg.last) - 0.5 * hop
            events.append(
                Event(
                    patient=self.patient,
                    device=self.device,
                    type=seg.type,
                    onset_s=round(max(0.0, onset), 3),
                    offset_s=round(offset, 3),
                    confidence=round(seg.confidence, 4),
                    peak_uv=round(seg.peak_uv, 2),
                    start_ns=self.start_ns,
                )
            )
        return events

    def _summaries(
        self, ends: FloatArray, rms: FloatArray, acc_activity: FloatArray, valid: npt.NDArray[np.bool_]
    ) -> list[Summary]:
        """One summary per whole second of stream time (every second window at a 0.5 s hop)."""
        assert self.emg is not None
        out = []
        for i, t in enumerate(ends):
            second = int(np.floor(t))
            if np.floor(t - self.emg.hop_s) == second:
                continue
            act = acc_activity[i]
            out.append(
                Summary(
                    patient=self.patient,
                    device=self.device,
                    time_ns=self.start_ns + second * 1_000_000_000,
                    emg_rms_uv=float(rms[i].max()),
                    acc_activity_g=float(10**act) if np.isfinite(act) else float("nan"),
                    data_received=bool(valid[i]),
                )
            )
        return out


assert BASE_NAMES + NAMES[len(BASE_NAMES) :] == NAMES
