"""One device's detection pipeline: samples in, events and summaries out.

    EMG/ACC samples -> windows (windows.py) -> features (features/) -> model -> segments -> events
                                                               \\-> PLM rules (plm.py) -> plm events

The same object serves the live service (fed frame by frame from MQTT) and offline detection (fed a file
in large chunks). Every stage is either sequential over samples with carried state, or computed per window
from that window's own neighbourhood, so the events do not depend on how the samples were chunked.

Per-recording normalisation: each EMG channel's RMS is divided by that channel's *resting baseline*, the
20th percentile of its 1 s RMS over the last 30 minutes, re-estimated every 10 s. A cramp is then "far
above this person's own rest on this sensor", whatever the gain or noise floor.

Besides cramps and spasms (the model's job) the pipeline reports, apart from them:
- ``plm`` events by the AASM/WASM rules (plm.py), excluding movements inside cramps and spasms;
- for each cramp, ``precursor_s``: how long a low-level tone (1.5-10x rest) rose just before it, and
  ``interrupted_s``: how much of the cramp episode (episodes.py) the window model did not call involuntary
  (wake behaviour, relief dips);
- in each 1 s summary, the number of fasciculation-like twitches seen at rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from .episodes import EPS_UV as EPISODE_EPS_UV
from .episodes import discharge_floor
from .events import Event, Summary
from .features import ACC_NAMES, EMG_NAMES, NAMES, acc_window_features, context_features, emg_window_features
from .features.context import ACTIVE_LOG_LEVEL, FUTURE, PAST, provisional_context_features
from .model import Model
from .plm import LegMovement, PlmScorer
from .segment import Segment, Segmenter, SegmentRules
from .subtype import Decision, classify, span_from_windows
from .windows import AccWindower, EmgWindower, EmgWindows

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BASELINE_PERCENTILE = 20.0
BASELINE_HISTORY = 3600  # windows: 30 min
BASELINE_EVERY = 20  # windows: 10 s
# Live, with no accelerometer known: how far EMG may run ahead of it before windows go on without it.
ACC_WAIT_S = 10.0  # no ACC seen yet (at least 2 EMG frames' worth, so long frames do not trip it)
ACC_STALL_S = 300.0  # an ACC stream was seen but has stalled
SCORED = ("cramp", "spasm")
# Live: an event is announced (state "open") once the model, scoring the newest windows from their past
# alone (provisional_context_features: no look-ahead), has called this much of it involuntary, by the type
# it looks like so far. The final decision waits for the 15 s look-ahead (features.context.FUTURE) as
# before, and confirms or withdraws it. Seconds of evidence trade delay against withdrawn announcements:
# the first seconds of a leg movement or a turn in bed (up to about 5 s) look like a cramp's, so a cramp
# announced after 2 s was withdrawn 10-15 times an hour on simulated nights, after 6 s about 1.5 times
# (docs/scaling.md, "Events while they go on"). A spasm after 2 s was seldom withdrawn.
OPEN_AFTER_S: dict[str, float] = {"cramp": 6.0, "spasm": 2.0}
# How far (windows: 5 s) the final event's onset may come after the announced run's last window and still
# be the announced event; past that, with no event under way, the announcement is withdrawn.
OPEN_MATCH_WINDOWS = 10
BASE_NAMES = EMG_NAMES + ACC_NAMES

# Precursor: a tone between 1.5x and 10x the resting level, lasting at least 10 s right before a cramp.
PRECURSOR_LOW = float(np.log(1.5))
PRECURSOR_HIGH = float(np.log(10.0))
PRECURSOR_MIN_S = 10.0
# Fasciculation: an isolated 50 ms segment whose peak is >= 8x the resting RMS, in a window at rest.
FASCICULATION_PEAK_RATIO = 8.0
REST_MEDIAN_RATIO = 1.5


@dataclass(slots=True)
class _Announced:
    """An event announced "open" early, waiting for the final decision on its windows."""

    event: Event
    first: int  # the announced run's first window
    last: int  # the window it was announced at
    segment_first: int = -1  # the first window of the segmenter's event it was matched to


class WindowTable:
    """Named per-window arrays that share their first axis, appended at the end and dropped at the front."""

    def __init__(self) -> None:
        self.columns: dict[str, np.ndarray] = {}
        self.first = 0  # window index of row 0

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0] if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def append(self, **rows: np.ndarray) -> None:
        if not self.columns:
            self.columns = {k: v.copy() for k, v in rows.items()}
            return
        for k, v in rows.items():
            self.columns[k] = np.concatenate([self.columns[k], v])

    def repeat_edge(self, n: int, *, front: bool, zero: tuple[str, ...] = ()) -> None:
        """Pad ``n`` rows repeating the first (front) or last row; columns in ``zero`` are padded with zeros."""
        for k, v in self.columns.items():
            edge = v[:1] if front else v[-1:]
            pad = np.zeros((n, *v.shape[1:]), v.dtype) if k in zero else np.repeat(edge, n, axis=0)
            self.columns[k] = np.concatenate([pad, v] if front else [v, pad])
        if front:
            self.first -= n

    def drop_front(self, n: int) -> None:
        if n > 0:
            self.columns = {k: v[n:] for k, v in self.columns.items()}
            self.first += n

    def rows(self, start: int, stop: int, name: str) -> np.ndarray:
        """Column ``name`` for window indices ``start..stop-1``."""
        return self.columns[name][start - self.first : stop - self.first]


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
        decide_windows: decide (context features, model, segments) only once this many windows are ready,
            or at the end. Live it is 0, so each window is decided as soon as its future is known;
            offline a large batch makes one model call score minutes of windows at once, which is several
            times faster per window. Every window is decided from its own neighbourhood, so the events
            are the same.
        batch_model: ``True`` (the live service): pushes stop before the model call, leaving the feature
            rows in :meth:`pending_windows` for the caller to score with other devices' rows and hand to
            :meth:`decide`. :meth:`finish` still decides everything at once.
        open_events: ``True`` (the live service): also report each cramp and spasm in state ``open`` once
            it has ``OPEN_AFTER_S`` of involuntary windows, and ``cancelled`` if it then comes to nothing
            (see :class:`~detector.events.Event`). The final events are the same either way.
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
        decide_windows: int = 0,
        batch_model: bool = False,
        open_events: bool = False,
    ) -> None:
        self.model = model
        self.open_events = open_events
        self.decide_windows = decide_windows
        self.patient = patient
        self.device = device
        self.start_ns = start_ns
        self.expect_acc = expect_acc
        self.keep_features = keep_features
        self._rules = rules
        self.emg: EmgWindower | None = None
        self.acc: AccWindower | None = None
        self._waiting = WindowTable()  # EMG part done, waiting for the accelerometer
        self._history = WindowTable()  # complete windows, kept for the context span
        self._decided = 0  # windows whose probabilities are done (segments, PLM)
        self._prepared = 0  # windows whose feature rows are built (>= _decided; the rest wait in _pending)
        self._pending: list[FloatArray] = []
        self._padded = False  # the end of the history was padded for the last windows' future
        self.batch_model = batch_model
        self._rms_ring = np.zeros((BASELINE_HISTORY, 1))
        self._rms_count = 0
        self._baseline: FloatArray | None = None
        self._segmenter: Segmenter | None = None
        self._plm: PlmScorer | None = None
        self._fasciculations = 0  # counted since the last summary
        self._ended = False
        # Live announcements (open_events): the provisional run being watched, then the announcements
        # waiting for the final decision, and the one matched to the event the segmenter has open now.
        self._run_first: int | None = None
        self._run_last = 0
        self._run_sum = np.zeros(0)
        self._run_n = 0
        self._run_on = False
        self._run_peak = 0.0
        self._run_announced = ""  # the type the run was announced as ("": not yet)
        self._announced: list[_Announced] = []
        self._linked: list[_Announced] = []  # all matched to the one event the segmenter has open
        self._gap_windows: set[int] = set()
        self._longest_push_s = 0.0

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
            self._plm = PlmScorer(self.emg.seg_s)
        if valid:  # filler is not a frame: it must not stretch the wait for the accelerometer
            self._longest_push_s = max(self._longest_push_s, samples.shape[0] / rate_hz)
        windows = self.emg.push(samples)
        if not valid:
            self._gap_windows.update(range(windows.first, windows.first + windows.count + 2))
        if windows.count:
            self._add_emg_windows(windows)
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
            out.events.extend(self._to_events(self._segmenter.finish(), through=None))
        if self._plm is not None:
            out.events.extend(self._plm_events(self._plm.finish()))
        return out

    # -- stages ------------------------------------------------------------------------------------

    def _add_emg_windows(self, w: EmgWindows) -> None:
        assert self.emg is not None
        rms = w.rms
        valid = np.ones(w.count, dtype=bool)
        if self._gap_windows:
            valid = np.array([w.first + i not in self._gap_windows for i in range(w.count)], dtype=bool)
        baseline = self._baselines(w.first, rms, valid)
        rows = emg_window_features(w, self.emg.rate_hz, self.emg.seg_s, baseline)
        self._waiting.append(
            rows=rows, rms=rms, valid=valid, baseline=baseline, seg_rms=w.seg_rms,
            fasciculations=self._count_fasciculations(w.seg_rms, w.seg_peak, baseline),
        )  # fmt: skip

    def _baselines(self, first: int, rms: FloatArray, valid: BoolArray) -> FloatArray:
        """Resting RMS per channel for each new window, updated every BASELINE_EVERY windows.

        Windows over gap filler (``valid`` False) stay out of the history: their zeros are no rest.
        Between updates the baseline holds, so those windows go into the history in one step each run.
        The history is copied at each update and the percentiles of all copies of one size are taken in
        one call at the end: numpy's per-call overhead was most of the cost, and the values are the same.
        """
        out = np.empty_like(rms)
        n = rms.shape[0]
        snapshots: list[FloatArray] = []  # the history at each update of this push
        fills: list[tuple[int, int, int]] = []  # out[start:stop] = percentile of snapshot j
        pending: int | None = None  # the snapshot the current baseline is waiting for
        i = 0
        while i < n:
            k = first + i
            if valid[i]:
                self._rms_ring[self._rms_count % BASELINE_HISTORY] = rms[i]
                self._rms_count += 1
            if self._rms_count == 0:  # only filler so far: nothing to call rest yet
                self._baseline = rms[i]
            elif (self._baseline is None and pending is None) or k % BASELINE_EVERY == 0:
                snapshots.append(self._rms_ring[: min(self._rms_count, BASELINE_HISTORY)].copy())
                pending = len(snapshots) - 1
            stop = i + 1
            if self._rms_count and stop < n:
                # Windows up to the next update keep this baseline: add the valid ones to the history at once.
                stop = min(n, stop + (-(first + stop)) % BASELINE_EVERY)
                rest = rms[i + 1 : stop][valid[i + 1 : stop]]
                self._rms_ring[(self._rms_count + np.arange(rest.shape[0])) % BASELINE_HISTORY] = rest
                self._rms_count += rest.shape[0]
            if pending is None:
                out[i:stop] = self._baseline
            else:
                fills.append((i, stop, pending))
            i = stop
        if snapshots:
            values: list[FloatArray] = [np.empty(0)] * len(snapshots)
            for size in {s.shape[0] for s in snapshots}:
                same = [j for j, s in enumerate(snapshots) if s.shape[0] == size]
                stacked = np.percentile(np.stack([snapshots[j] for j in same]), BASELINE_PERCENTILE, axis=1)
                for j, row in zip(same, stacked, strict=True):
                    values[j] = row
            for start, stop, j in fills:
                out[start:stop] = values[j]
            if pending is not None:
                self._baseline = values[pending]
        return out

    @staticmethod
    def _count_fasciculations(seg_rms: FloatArray, seg_peak: FloatArray, baseline: FloatArray) -> np.ndarray:
        """Isolated big twitches per window, counted only in windows that are otherwise at rest."""
        ratio_peak = seg_peak / (baseline[:, None, :] + 1e-9)
        ratio_rms = seg_rms / (baseline[:, None, :] + 1e-9)
        at_rest = np.median(ratio_rms, axis=1).max(axis=1) < REST_MEDIAN_RATIO
        spikes: BoolArray = np.asarray((ratio_peak >= FASCICULATION_PEAK_RATIO).any(axis=2), dtype=bool)
        # Isolated: the segments either side are not spikes too (a burst is not a twitch).
        before = np.zeros_like(spikes)
        before[:, 1:] = spikes[:, :-1]
        after = np.zeros_like(spikes)
        after[:, :-1] = spikes[:, 1:]
        isolated = spikes & ~before & ~after
        return np.where(at_rest, isolated.sum(axis=1), 0).astype(np.int64)

    def _advance(self) -> PipelineOutput:
        out = PipelineOutput()
        if self.emg is not None and len(self._waiting):
            w = self._waiting
            ends = self.emg.window_ends_s(w.first, w.first + len(w))
            ready = self._acc_ready(ends)
            if ready:
                acc_rows, gravity = self._acc_features(ends[:ready])
                take = {k: v[:ready] for k, v in w.columns.items()}
                w.drop_front(ready)
                pad_start = not len(self._history)
                self._history.append(
                    base=np.hstack([take["rows"], acc_rows]), gravity=gravity, peak=take["rms"].max(axis=1),
                    valid=take["valid"], baseline=take["baseline"], seg_rms=take["seg_rms"],
                )  # fmt: skip
                if pad_start:
                    # Repeat the first window before the stream start, so early windows have a "past".
                    self._history.repeat_edge(PAST, front=True, zero=("peak", "valid", "seg_rms"))
                if self.open_events:
                    n_known = self._history.first + len(self._history)
                    out.events.extend(self._provisional(n_known - ready, n_known))
                out.summaries.extend(self._summaries(ends[:ready], take, acc_rows[:, 0]))
        ready = self._history.first + len(self._history) - FUTURE - self._decided
        if self._ended or ready >= self.decide_windows:
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
            # The wait is at least two EMG frames, so a frame longer than the wait never decides windows
            # before the matching ACC frame had its chance to arrive (live then equals offline).
            wait = max(ACC_WAIT_S if self.acc is None else ACC_STALL_S, 2 * self._longest_push_s)
            n = max(n, int(np.sum(ends <= ends[-1] - wait)))
        return n

    def _acc_features(self, ends: FloatArray) -> tuple[FloatArray, FloatArray]:
        if self.acc is None:
            return np.full((ends.shape[0], len(ACC_NAMES)), np.nan), np.full((ends.shape[0], 3), np.nan)
        win = self.acc.windows(ends)
        feats, gravity = acc_window_features(win, self.acc.rate_hz)
        self.acc.forget_before_s(float(ends[-1]))
        return feats, gravity

    # -- the model decision, in two phases ------------------------------------------------------
    #
    # Phase 1 (_prepare) builds the feature rows of every window whose future is known; phase 2 (decide)
    # takes their probabilities and runs segments, episodes and PLM. In between the rows wait in
    # ``_pending``, so the live service can score the windows of many devices in ONE model call (one
    # call per frame capped a detector at ~25 patients). Nothing is dropped from the history until
    # phase 2, so phase 2 sees exactly the rows phase 1 saw. With ``batch_model=False`` (offline, tests)
    # both phases run at once, as before.

    def _decide(self) -> PipelineOutput:
        """Context features, probabilities, segments and PLM for every window whose future is known."""
        if self.batch_model and not self._ended:
            # The caller calls pending_windows() once per round, so the context features of a device
            # that sent several frames in the round are built once, over all its new windows.
            return PipelineOutput()
        return self.decide(self._score(self.pending_windows()))

    def _prepare(self) -> None:
        """Phase 1: the full feature rows (base + context) of the windows that can be decided now."""
        h = self._history
        n_known = h.first + len(h)  # windows with a complete row
        if self._ended and len(h) and n_known > self._prepared and not self._padded:
            # Pad the end by repeating the last window, so the last windows have a "future".
            h.repeat_edge(FUTURE, front=False, zero=("peak", "valid", "seg_rms"))
            self._padded = True
            stop = n_known
        else:
            stop = n_known - FUTURE
        start = self._prepared
        if stop <= start:
            return
        a, b = start - h.first, stop - h.first
        ctx = context_features(h["base"], BASE_NAMES, h["gravity"], a, b)
        self._pending.append(np.hstack([h["base"][a:b], ctx]))
        self._prepared = stop

    def pending_windows(self) -> FloatArray | None:
        """Feature rows waiting for probabilities, ``(n, len(NAMES))``, or None; see :meth:`decide`."""
        self._prepare()
        return self._stacked()

    def _stacked(self) -> FloatArray | None:
        if not self._pending:
            return None
        if len(self._pending) > 1:
            self._pending = [np.vstack(self._pending)]
        return self._pending[0]

    @property
    def model_types(self) -> tuple[str, ...]:
        """The columns :meth:`decide` expects, in order: the scored types, then ``movement``."""
        types = self._segmenter.types if self._segmenter is not None else ()
        return (*types, "movement")

    def _score(self, x: FloatArray | None) -> FloatArray | None:
        if x is None or self.model is None:
            return None
        return self.model.probabilities(x, self.model_types)

    def decide(self, probs_all: FloatArray | None) -> PipelineOutput:
        """Phase 2: segments, episodes and PLM from the probabilities of :meth:`pending_windows` (in order).

        ``probs_all`` is ``model.probabilities(pending_windows(), model_types)``, or None without a model.
        """
        out = PipelineOutput()
        x = self._stacked()  # exactly the rows pending_windows() returned: no _prepare in between
        if x is None:
            return out
        self._pending = []
        h = self._history
        start = self._decided
        stop = start + x.shape[0]
        valid = h.rows(start, stop, "valid")
        if self.keep_features:
            assert self.emg is not None
            out.features = x
            out.window_end_s = self.emg.window_ends_s(start, stop)
        if probs_all is not None and self._segmenter is not None and self._plm is not None:
            types = self._segmenter.types
            probs = probs_all[:, : len(types)]
            involuntary = np.where(valid, probs.sum(axis=1), 0.0) >= self._segmenter.rules.off
            # Not a periodic limb movement: anything the model calls involuntary, voluntary or artifact.
            not_plm = involuntary | (probs_all.sum(axis=1) >= 0.5) | ~valid
            lead = self._precursor_lead(start, stop, involuntary)
            # The cramp episode level (episodes.py) follows the discharge floor relative to the resting
            # baseline the pipeline already keeps.
            baseline = h.rows(start, stop, "baseline")
            floor = discharge_floor(h.rows(start, stop, "seg_rms"), baseline)
            # ...and an episode keeps the rest it began with (a long cramp fills the baseline's history).
            rest = np.log(baseline + EPISODE_EPS_UV)
            peak = h.rows(start, stop, "peak")
            # Announced events are matched when the decision reaches OPEN_MATCH_WINDOWS past them: the
            # windows are pushed in pieces cut there (the segments do not depend on the pieces).
            cuts = sorted(
                {a.last + OPEN_MATCH_WINDOWS + 1 - start for a in self._announced} & set(range(1, stop - start))
            )
            for a, b in zip([0, *cuts], [*cuts, stop - start], strict=True):
                segments = self._segmenter.push(probs[a:b], peak[a:b], valid[a:b], lead[a:b], floor[a:b], rest[a:b])
                out.events.extend(self._to_events(segments, through=start + b - 1))
            lms = self._plm.push(h.rows(start, stop, "seg_rms"), h.rows(start, stop, "baseline"), not_plm)
            out.events.extend(self._plm_events(lms))
        self._decided = stop
        # Keep only what future context needs: PAST rows before the next undecided window.
        h.drop_front((stop - PAST) - h.first)
        return out

    def _precursor_lead(self, start: int, stop: int, involuntary: BoolArray) -> FloatArray:
        """For windows where an involuntary run may start: seconds of low-level tone just before them."""
        assert self.emg is not None
        lead = np.zeros(stop - start)
        level = self._history["base"][:, 0]  # emg_rel_hi, log of RMS over the resting baseline
        for i in np.flatnonzero(involuntary):
            k = start + i - self._history.first
            n = 0
            # Skip the last 2 s: the cramp's own rise starts there.
            for j in range(int(k) - 4, max(int(k) - PAST, 0) - 1, -1):
                if not PRECURSOR_LOW <= level[j] < PRECURSOR_HIGH:
                    break
                n += 1
            lead[i] = n * self.emg.hop_s
        return lead

    # -- output ------------------------------------------------------------------------------------

    def _event(
        self,
        kind: str,
        onset: float,
        offset: float,
        confidence: float,
        peak: float,
        precursor_s: float = 0.0,
        interrupted_s: float = 0.0,
        subtype: str = "",
        state: str = "final",
    ) -> Event:
        return Event(
            patient=self.patient,
            device=self.device,
            type=kind,
            onset_s=round(max(0.0, onset), 3),
            offset_s=round(offset, 3),
            confidence=round(confidence, 4),
            peak_uv=round(peak, 2),
            subtype=subtype,
            start_ns=self.start_ns,
            precursor_s=round(precursor_s, 1),
            interrupted_s=round(interrupted_s, 1),
            state=state,
        )

    def _to_events(self, segments: list[Segment], through: int | None) -> list[Event]:
        """The final events of ``segments``; live, also the fate of the announced events the decision
        has now passed (windows up to ``through``; None: the end of the stream)."""
        events = []
        for seg in segments:
            event = self._final_event(seg)
            if not self.open_events:
                if event is not None:
                    events.append(event)
                continue
            for announced in self._match(seg):
                if event is not None and event.type == announced.event.type and event.opened_onset_s is None:
                    # The id announced: the final event replaces the open one for every consumer.
                    event = replace(event, opened_onset_s=announced.event.onset_s)
                else:
                    events.append(replace(announced.event, state="cancelled"))
            if event is not None:
                events.append(event)
        if self.open_events:
            events.extend(self._settle(through))
        return events

    def _final_event(self, seg: Segment) -> Event | None:
        """The event of a final segment, or None for a spasm whose EMG fits no spasm subtype."""
        assert self.emg is not None
        hop = self.emg.hop_s
        # A window's centre is 1 hop before its end; an event spans half a hop either side.
        onset = self.emg.window_end_s(seg.first) - 1.5 * hop
        offset = self.emg.window_end_s(seg.last) - 0.5 * hop
        confidence = self.model.calibrated(seg.confidence) if self.model else seg.confidence
        lead = seg.lead_s if seg.type == "cramp" and seg.lead_s >= PRECURSOR_MIN_S else 0.0
        subtype = ""
        if seg.type == "spasm":
            decision = self._spasm_subtype(seg)
            subtype = decision.subtype
            if not decision.spasm:
                # Its EMG fits no spasm subtype (subtype.py: jerks at a voluntary rhythm): no spasm.
                log.debug("spasm %.1f-%.1f s dropped: %s", onset, offset, decision.reason)
                return None
        return self._event(
            seg.type, onset, offset, confidence, seg.peak_uv,
            precursor_s=lead, interrupted_s=seg.interrupted * hop, subtype=subtype,
        )  # fmt: skip

    # -- live announcements -------------------------------------------------------------------------
    #
    # The model's decision on a window needs 15 s of its future. To tell carers of a cramp within seconds,
    # the newest windows are also scored with *provisional* context features (their future taken to be
    # the window itself, as at the end of a recording): a run of OPEN_AFTER_S of them called involuntary
    # is announced "open" at once. Only windows well above rest (ACTIVE_LOG_LEVEL) are scored so, which
    # keeps the cost at rest nil. The final decision is untouched: when it reaches the announced windows
    # it either finds the event there (the final event then carries the announced id) or withdraws the
    # announcement ("cancelled", same id). Every step depends on the windows alone, not on how they were
    # batched, so a journal replay announces the same events with the same ids.

    def _provisional(self, first: int, stop: int) -> list[Event]:
        """Watch windows ``first..stop-1`` (just complete) for a run to announce."""
        assert self.emg is not None and self._segmenter is not None
        if self.model is None:
            return []
        h = self._history
        rel = np.arange(first, stop) - h.first
        n_types = len(self._segmenter.types)
        active = h["valid"][rel] & (h["base"][rel, 0] >= ACTIVE_LOG_LEVEL)
        if self._run_first is None and not active.any():
            return []
        rules = self._segmenter.rules
        need = [max(1, round(OPEN_AFTER_S[t] / self.emg.hop_s)) for t in self._segmenter.types]
        merge = max(1, round(rules.merge_s / self.emg.hop_s))
        probs: FloatArray | None = None  # of windows from `scored_from` on, scored when first needed
        scored_from = 0
        out = []
        for i, k in enumerate(range(first, stop)):
            if self._run_first is not None and self._run_announced == "cramp":
                # An announced event needs no more scoring (most active windows are in long cramps, so
                # this is most of the saving): it goes on while the EMG stays active, as a run would.
                if active[i]:
                    self._run_last = k
                elif k - self._run_last > merge:
                    self._run_first = None
                continue
            if not active[i]:
                p = 0.0
            else:
                if probs is None:
                    probs = np.zeros((stop - first - i, n_types))
                    scored_from = i
                    rows = rel[i:][active[i:]]
                    ctx = provisional_context_features(h["base"], BASE_NAMES, h["gravity"], rows)
                    x = np.hstack([h["base"][rows], ctx])
                    probs[active[i:]] = self.model.probabilities(x, self.model_types)[:, :n_types]
                p = float(probs[i - scored_from].sum())
            if p < rules.off:
                # Dips shorter than the segmenter's merge_s do not end the run, as they do not end an event.
                if self._run_first is not None and k - self._run_last > merge:
                    self._run_first = None
                continue
            if self._run_first is None:
                self._run_first, self._run_sum, self._run_n = k, np.zeros(n_types), 0
                self._run_on, self._run_peak, self._run_announced = False, 0.0, ""
            assert probs is not None
            self._run_last = k
            self._run_sum = self._run_sum + probs[i - scored_from]
            self._run_n += 1
            self._run_peak = max(self._run_peak, float(h["peak"][k - h.first]))
            self._run_on |= p >= rules.on
            best = int(np.argmax(self._run_sum))
            # A run announced as a spasm that grows into a cramp is announced again, as a cramp.
            kind = self._segmenter.types[best]
            if self._run_on and self._run_n >= need[best] and self._run_announced not in (kind, "cramp"):
                self._run_announced = kind
                mean = self._run_sum / self._run_n
                hop = self.emg.hop_s
                event = self._event(
                    self._segmenter.types[best],
                    self.emg.window_end_s(self._run_first) - 1.5 * hop,
                    self.emg.window_end_s(k) - 0.5 * hop,
                    self.model.calibrated(float(mean[best])),
                    self._run_peak,
                    state="open",
                )
                self._announced.append(_Announced(event, self._run_first, k))
                out.append(event)
        return out

    def _match(self, seg: Segment) -> list[_Announced]:
        """The announcements a final segment answers, the newest last: those matched to it while it was
        open, or those waiting whose run overlaps it. One of its type carries its id; the rest are withdrawn."""
        if self._linked and self._linked[0].segment_first == seg.first:
            linked, self._linked = self._linked, []
            return sorted(linked, key=lambda a: a.event.type != seg.type)
        found = [a for a in self._announced if a.first <= seg.last and a.last + OPEN_MATCH_WINDOWS >= seg.first]
        for a in found:
            self._announced.remove(a)
        return sorted(found, key=lambda a: a.event.type != seg.type)

    def _settle(self, through: int | None) -> list[Event]:
        """Withdraw what the decision, now at window ``through``, has not found."""
        assert self._segmenter is not None
        out = []
        running = self._segmenter.running_first
        if self._linked and running != self._linked[0].segment_first:
            # Its event closed too short for its type: nothing final follows.
            out += [replace(a.event, state="cancelled") for a in self._linked]
            self._linked = []
        for a in list(self._announced):
            if through is not None and a.last + OPEN_MATCH_WINDOWS > through:
                continue
            self._announced.remove(a)
            if running is not None and running <= a.last + OPEN_MATCH_WINDOWS:
                # The event is under way: the announcement waits for its end.
                a.segment_first = running
                self._linked.append(a)
            else:  # nothing there
                out.append(replace(a.event, state="cancelled"))
        return out

    def _spasm_subtype(self, seg: Segment) -> Decision:
        """Tonic, clonus, flexor, extensor or myoclonic, or no spasm at all (subtype.py), from the windows
        still in the history."""
        assert self.emg is not None
        span = span_from_windows(self._history, seg.first, seg.last, self.emg.seg_s, self.emg.hop_s)
        return classify(span)

    def _plm_events(self, lms: list[LegMovement]) -> list[Event]:
        return [self._event("plm", lm.onset_s, lm.offset_s, 1.0, lm.peak_uv) for lm in lms]

    def _summaries(self, ends: FloatArray, take: dict[str, np.ndarray], acc_activity: FloatArray) -> list[Summary]:
        """One summary per whole second of stream time (every second window at a 0.5 s hop).

        A summary carries the fasciculations counted since the previous one (``_fasciculations`` carries
        the count of windows after the last summary of a push into the next push).
        """
        assert self.emg is not None
        seconds = np.floor(ends)
        emit = np.flatnonzero(np.floor(ends - self.emg.hop_s) != seconds)
        counts = np.cumsum(take["fasciculations"])
        if not emit.size:
            self._fasciculations += int(counts[-1]) if counts.size else 0
            return []
        since = np.diff(counts[emit], prepend=0)
        since[0] += self._fasciculations
        self._fasciculations = int(counts[-1] - counts[emit[-1]])
        act = acc_activity[emit]
        finite = np.isfinite(act)
        activity = np.full(act.shape, np.nan)
        activity[finite] = 10 ** act[finite]
        return [
            Summary(
                patient=self.patient,
                device=self.device,
                time_ns=self.start_ns + second * 1_000_000_000,
                emg_rms_uv=rms,
                acc_activity_g=g,
                data_received=received,
                fasciculations=n,
            )
            for second, rms, g, received, n in zip(
                seconds[emit].astype(np.int64).tolist(),
                take["rms"][emit].max(axis=1).tolist(),
                activity.tolist(),
                take["valid"][emit].tolist(),
                since.tolist(),
                strict=True,
            )
        ]


assert BASE_NAMES + NAMES[len(BASE_NAMES) :] == NAMES
