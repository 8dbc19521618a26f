"""Spasm subtype: tonic, clonus, flexor, extensor or myoclonic, by a few physiological rules.

Clinicians read a clonus run differently from a flexor spasm (issue 14), so every detected spasm event
gets a subtype (``Event.subtype``). The rules are a short ladder over measurements of the event's own span,
each from a number in ``shared/reference/physiology.md`` §1 and §3, not from a classifier: rules fitted to
one generator would not carry over to real legs, and each decision has to be explainable to a clinician.
The detector's model is not consulted, so retraining it does not change how a spasm is named. The first
rule that holds decides:

1. **flexor / extensor by a turn**: the shank turns by at least ``MOVE_MIN_DEG`` as the spasm starts
   (gravity direction before the onset against the 2 s ACC windows ending within ``MOVE_WITHIN_S`` + 2 s
   of it). Flexor spasms turn the shank 20-90 deg in 0.2-1 s; a clonus beats and a myoclonic jerk
   twitches, neither changes the posture. The direction is decided as in rule 4.
2. **clonus**: the EMG envelope beats at 4.7-7 Hz (bursts ~50-100 ms, one per cycle; Wallace 2005): at
   least ``CLONUS_MIN_SHARE`` of the envelope's 1-10 Hz modulation power lies within ±0.5 Hz of its
   strongest peak in 4.5-7.5 Hz, over an event of at least ``CLONUS_MIN_S`` (about ten beats).
3. **myoclonic**: the EMG comes as jerks (50-300 ms, physiology §1) standing out of what lies between
   them (contrast >= ``JERK_CONTRAST``): one or more bursts, none longer than ``JERK_MAX_S``, or a series
   (0.3-0.5 Hz, which the segmenter joins into one spasm, events.md) of typically short bursts with the
   EMG active at most ``SERIES_MAX_ACTIVE`` of the event.
   Jerks that recur faster than that, at a median interval under ``SERIES_MIN_INTERVAL_S`` (0.5 Hz less
   a tenth), are **not a spasm** (``Decision.spasm`` False; the pipeline drops the event): short bursts at
   0.55-4.5 Hz are no subtype of events.md, neither spinal myoclonus (0.3-0.5 Hz) nor clonus (4.7-7 Hz),
   but the rhythm of stepping (1-2 Hz), rubbing (1-3 Hz) and restless high-frequency leg movements
   (physiology.md §1, §5), all voluntary or look-alikes (events.md: not events).
4. **flexor / extensor by a jerk** (needs the accelerometer): a jerk of at least ``JERK_MIN_G`` (SD of
   |acc| over a 2 s window; flexor jerks are 0.3-2 g) within ``MOVE_WITHIN_S`` of the onset: the spasm
   moves the leg, so the movement starts with it (unlike a turn during a long tonic spasm). Which way:

   - the turn about the sensor's mediolateral (y) axis, i.e. in the leg's sagittal plane, from the
     gravity direction before the onset to the most turned one: negative (the knee end rises, the foot
     end drops, as when the leg is pulled up) is **flexor**, positive (the foot end rises: a kick that
     straightens the leg) is **extensor**. This assumes the CrampWatch sensor frame, the one the
     simulator uses: x along the shank towards the foot, z out of the shin, y = z × x. It holds lying
     supine and prone alike. The sign is read only when gravity has a sagittal component
     (``SAGITTAL_MIN``): lying on the side, the leg flexes about the vertical and gravity stays put;
   - else a new posture still **held** ``HELD_AFTER_S`` after the offset (at least ``HELD_MIN_DEG``):
     **extensor** (an extensor spasm straightens the leg and holds it, §1);
   - else a movement **back** 1.5-3.5 s after the offset (at least ``RETURN_MIN_G``): **flexor** (the
     leg pulled up falls back);
   - else **extensor**: the leg moved and stayed where it went.
5. **tonic**: anything else: a sustained contraction without a clonic beat, jerks or a movement at its
   onset.

Without an accelerometer (or with its stream lost), rules 2, 3 and 5 still apply, and a flexor or extensor
spasm is named **tonic**: the EMG alone does not show which way, or whether, the leg moved. Thresholds
marked as tuned were set on simulated nights apart from every evaluation seed (docs/subtypes.md).

The measurements come from what the pipeline already keeps per 0.5 s window (``seg_rms``: the 50 ms
envelope of each window's new hop; ``baseline``: the resting RMS; ``gravity`` and the ACC activity of the
2 s ACC window), over the event and a few windows either side, so no sample buffer is added. A spasm
longer than 50 s is judged on its last 50 s (``REACH_WINDOWS``), so the subtype never depends on how the
samples were chunked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .features import ACC_NAMES, EMG_NAMES
from .features.context import PAST

FloatArray = npt.NDArray[np.float64]

SUBTYPES = ("tonic", "clonus", "flexor", "extensor", "myoclonic")

# Thresholds; "(tuned)": set on simulated tuning nights (docs/subtypes.md), the rest from physiology.md.
# Clonus.
CLONUS_BAND_HZ = (4.5, 7.5)  # the 4.7-7 Hz clonus rate, with the spread of one 0.2-0.5 Hz bin either side
MODULATION_BAND_HZ = (1.0, 10.0)  # envelope modulation: above a cramp's 1.3-1.5 Hz waxing, to Nyquist (10 Hz)
CLONUS_HALF_BAND_HZ = 0.5
CLONUS_MIN_SHARE = 0.4  # (tuned) white (tonic) modulation puts ~1/9 of its power in a 1 Hz band
CLONUS_MIN_S = 2.0  # about ten beats: "seconds to > 1 min"
# Myoclonus.
ACTIVE_RATIO = 3.0  # the level the context features call active
BURST_FRACTION = 0.2
BRIDGE_S = 0.15
JERK_MIN_S = 0.075  # 50-300 ms jerks, smeared by the 50 ms envelope and the 20-95 Hz filter: 2-8 segments
JERK_MAX_S = 0.4  # (tuned)
JERK_CONTRAST = 1.7  # (tuned) the jerks' level over the envelope between them (a steady discharge: ~1.3-1.5)
# A series at 0.3-0.5 Hz of jerks of at most 300 ms is active at most ~15 % of the time; a tonic spasm's
# envelope, even when weak and broken up by the threshold, is active most of it.
SERIES_MAX_ACTIVE = 0.25  # (tuned)
# Spinal myoclonus recurs at 0.3-0.5 Hz (Calancie 2006, physiology.md §3): jerk onsets >= 2 s apart. A tenth
# off for the onset read on 50 ms segments and for beat-to-beat variation of the rate.
SERIES_MIN_INTERVAL_S = 0.9 / 0.5
# Flexor / extensor.
MOVE_MIN_DEG = 10.0  # (tuned) flexor 20-90 deg; the 2 s ACC window averages a 0.2-1 s turn down to about half
JERK_MIN_G = 0.05  # a 0.3-2 g jerk lasting 0.2-1 s, as the SD of |acc| over the 2 s ACC window
MOVE_WITHIN_S = 2.5
SAGITTAL_MIN = 0.5  # |gravity| in the x-z plane (of 1): below it the leg lies on its side
SIGN_MIN_DEG = 10.0
HELD_MIN_DEG = 10.0
HELD_AFTER_S = 5.0
RETURN_FROM_S = 1.5  # the leg pulled up moves back: a movement 1.5-3.5 s after the offset...
RETURN_MIN_G = 0.02  # (tuned) ...of at least this SD of |acc| (rest is 1-2 mg)
PRE_S = 0.5  # the "before" gravity is the 2 s ACC window ending this long before the onset
# How far back from its last window a spasm is looked at. When the segmenter closes a spasm (the merge gap,
# ~8 windows, after its last window) the pipeline's history still holds PAST windows before the deciding
# one; how many more depends on how the samples were chunked. Reading no further back than this keeps the
# subtype independent of the chunking, as every other part of an event is.
REACH_WINDOWS = PAST - 20

_ACTIVITY = (EMG_NAMES + ACC_NAMES).index("acc_log_activity")


class Windows(Protocol):
    """The pipeline's per-window history (:class:`detector.pipeline.WindowTable`)."""

    first: int

    def __len__(self) -> int: ...
    def rows(self, start: int, stop: int, name: str) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class SpasmSpan:
    """What the rules look at, for one spasm event.

    ``envelope``: ``(segments, channels)`` 50 ms RMS in µV from about half a hop before the onset to half a
    hop after the offset; ``baseline``: ``(channels,)`` resting RMS. ``gravity``: ``(windows, 3)`` unit
    vectors and ``activity``: ``(windows,)`` SD of |acc| in g, for the windows ending at ``window_t``
    (seconds from the onset), or ``None`` without an accelerometer.
    """

    envelope: FloatArray
    baseline: FloatArray
    seg_s: float
    duration_s: float
    gravity: FloatArray | None = None
    activity: FloatArray | None = None
    window_t: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A subtype and the measurements that decided it (for logs, tests and tuning)."""

    subtype: str
    reason: str
    clonus_share: float = math.nan
    longest_burst_s: float = math.nan
    bursts: int = 0
    moved_deg: float = math.nan
    jerk_g: float = math.nan
    sagittal_deg: float = math.nan
    held_deg: float = math.nan
    return_g: float = math.nan
    contrast: float = math.nan
    jerk_interval_s: float = math.nan  # median interval between burst onsets (nan with fewer than 2 bursts)
    #: False: the EMG fits no spasm subtype (jerks at a voluntary rhythm): the event is not a spasm.
    spasm: bool = True


def span_from_windows(table: Windows, first: int, last: int, seg_s: float, hop_s: float) -> SpasmSpan:
    """The span of a spasm made of windows ``first..last`` (inclusive), from the pipeline's history.

    A spasm longer than ``REACH_WINDOWS`` is judged on its last ``REACH_WINDOWS`` windows (50 s), without
    its onset movement.
    """
    lo_k, hi_k = max(table.first, last - REACH_WINDOWS), table.first + len(table)
    # The envelope: window k holds the 10 segments of its new hop, [end_k - hop, end_k]. The event runs
    # from end_first - 1.5 hop to end_last - 0.5 hop, so windows first-1..last cover it.
    a, b = max(first - 1, lo_k), min(last + 1, hi_k)
    valid = np.asarray(table.rows(a, b, "valid"), dtype=bool)
    seg = np.asarray(table.rows(a, b, "seg_rms"), dtype=np.float64)[valid]
    envelope = seg.reshape(-1, seg.shape[-1]) if seg.size else np.zeros((0, 1))
    baseline = np.asarray(table.rows(max(first, lo_k), max(first, lo_k) + 1, "baseline"), dtype=np.float64)[0]
    duration = (last - first + 1) * hop_s
    pre = math.ceil(PRE_S / hop_s + 1.5)  # the window ending PRE_S or more before the onset
    post = math.ceil(HELD_AFTER_S / hop_s + 0.5)  # the window ending HELD_AFTER_S or more after the offset
    ga, gb = max(first - pre, lo_k), min(last + post + 1, hi_k)
    gravity = np.asarray(table.rows(ga, gb, "gravity"), dtype=np.float64)
    if gb <= ga or not np.all(np.isfinite(gravity)):
        return SpasmSpan(envelope, baseline, seg_s, duration)
    activity = 10.0 ** np.asarray(table.rows(ga, gb, "base"), dtype=np.float64)[:, _ACTIVITY]
    # Window k ends at end_first + (k - first) hops; the onset is 1.5 hops before end_first.
    window_t = (np.arange(ga, gb, dtype=np.float64) - first + 1.5) * hop_s
    return SpasmSpan(envelope, baseline, seg_s, duration, gravity, activity, window_t)


def classify(span: SpasmSpan) -> Decision:
    """The subtype of one spasm (the rules of the module docstring, in order)."""
    if span.envelope.shape[0] == 0:
        return Decision("tonic", "no EMG data in the event")
    rel = span.envelope / (span.baseline + 1e-3)
    channel = int(np.argmax(np.mean(np.log(rel + 1e-3), axis=0)))  # the channel the spasm is strongest on
    share = clonus_share(span.envelope[:, channel], span.seg_s) if span.duration_s >= CLONUS_MIN_S else math.nan
    bursts, contrast, onsets = burst_runs(rel[:, channel], span.seg_s)
    interval = float(np.median(np.diff(onsets))) if len(onsets) >= 2 else math.nan
    longest = max(bursts) if bursts else 0.0
    typical = float(np.median(bursts)) if bursts else 0.0
    active = sum(bursts) / (span.envelope.shape[0] * span.seg_s)
    moved = _movement(span)
    m = Decision(
        "", "", share, longest, len(bursts), moved["moved_deg"], moved["jerk_g"], moved["sagittal_deg"],
        moved["held_deg"], moved["return_g"], contrast, interval,
    )  # fmt: skip
    if m.moved_deg >= MOVE_MIN_DEG:
        return _flexor_or_extensor(m, f"the shank turned {m.moved_deg:.0f} deg at the onset")
    if share >= CLONUS_MIN_SHARE:
        return replace(m, subtype="clonus", reason=f"EMG envelope beats at 4.5-7.5 Hz ({share:.0%} of its modulation)")
    jerks = contrast >= JERK_CONTRAST and JERK_MIN_S <= longest <= JERK_MAX_S
    series = contrast >= JERK_CONTRAST and len(bursts) >= 2 and typical <= JERK_MAX_S and active <= SERIES_MAX_ACTIVE
    if (jerks or series) and interval < SERIES_MIN_INTERVAL_S:
        reason = (
            f"{len(bursts)} jerks every {interval:.2f} s: faster than spinal myoclonus (0.3-0.5 Hz), slower than"
            " clonus; a voluntary rhythm (stepping, rubbing), not a spasm"
        )
        return replace(m, subtype="", reason=reason, spasm=False)
    if jerks:
        return replace(m, subtype="myoclonic", reason=f"{len(bursts)} jerk(s) of at most {longest:.2f} s")
    if series:
        reason = f"a series of {len(bursts)} jerks (median {typical:.2f} s), EMG active {active:.0%} of the time"
        return replace(m, subtype="myoclonic", reason=reason)
    if span.gravity is None:
        return replace(m, subtype="tonic", reason="sustained EMG; no accelerometer to see a flexor/extensor movement")
    if m.jerk_g >= JERK_MIN_G:
        return _flexor_or_extensor(m, f"a {m.jerk_g:.2f} g jerk at the onset")
    return replace(m, subtype="tonic", reason="sustained EMG without a movement at its onset")


def _flexor_or_extensor(m: Decision, moved: str) -> Decision:
    """Which way the leg moved: the sagittal sign, else a held posture or a movement back."""
    if abs(m.sagittal_deg) >= SIGN_MIN_DEG:
        kind = "flexor" if m.sagittal_deg < 0 else "extensor"
        return replace(m, subtype=kind, reason=f"{moved}, {m.sagittal_deg:+.0f} deg in the sagittal plane")
    if m.held_deg >= HELD_MIN_DEG:
        return replace(m, subtype="extensor", reason=f"{moved}; the new posture ({m.held_deg:.0f} deg) is held")
    if m.return_g >= RETURN_MIN_G:
        return replace(m, subtype="flexor", reason=f"{moved}; the leg moved back after the spasm")
    return replace(m, subtype="extensor", reason=f"{moved}; no movement back, so the new posture is held")


def clonus_share(env: FloatArray, seg_s: float) -> float:
    """Share of the envelope's 1-10 Hz modulation power within ±0.5 Hz of its strongest 4.5-7.5 Hz peak."""
    n = env.shape[0]
    x = (env - env.mean()) * np.hanning(n)
    size = max(256, 1 << (n - 1).bit_length())  # zero-padded: a fine grid to find the peak on
    power = np.abs(np.fft.rfft(x, size)) ** 2
    freqs = np.fft.rfftfreq(size, seg_s)
    modulation = (freqs >= MODULATION_BAND_HZ[0]) & (freqs <= MODULATION_BAND_HZ[1])
    band = (freqs >= CLONUS_BAND_HZ[0]) & (freqs <= CLONUS_BAND_HZ[1])
    total = float(power[modulation].sum())
    if total <= 0 or not band.any():
        return 0.0
    peak = float(freqs[band][np.argmax(power[band])])
    near = modulation & (np.abs(freqs - peak) <= CLONUS_HALF_BAND_HZ)
    return float(power[near].sum()) / total


def bursts_s(rel: FloatArray, seg_s: float) -> tuple[list[float], float]:
    """Durations of the EMG bursts in an envelope given relative to rest, and their contrast (see
    :func:`burst_runs`)."""
    lengths, contrast, _ = burst_runs(rel, seg_s)
    return lengths, contrast


def burst_runs(rel: FloatArray, seg_s: float) -> tuple[list[float], float, list[float]]:
    """Durations of the EMG bursts in an envelope given relative to rest, their contrast, and their onsets
    (seconds from the envelope's start).

    A burst is a run of 50 ms segments at least ``ACTIVE_RATIO`` x rest and ``BURST_FRACTION`` of the
    event's high level (its 95th percentile), with dips of up to ``BRIDGE_S`` bridged (a jerk's or a weak
    spasm's envelope can dip between motor-unit volleys). The contrast is that high level over the median
    envelope outside the bursts: a jerk stands out of silence, a tonic spasm's peaks out of its own
    discharge.
    """
    if rel.shape[0] == 0:
        return [], math.nan, []
    level = float(np.percentile(rel, 95))
    active = rel >= max(ACTIVE_RATIO, BURST_FRACTION * level)
    bridge = round(BRIDGE_S / seg_s)
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = np.concatenate([[True], starts[1:] - stops[:-1] > bridge]) if starts.size else np.zeros(0, bool)
    firsts = starts[keep]
    lasts = np.concatenate([stops[np.flatnonzero(keep)[1:] - 1], stops[-1:]]) if starts.size else stops
    for a, b in zip(firsts, lasts, strict=True):
        active[a:b] = True
    quiet = rel[~active]
    contrast = level / float(np.median(quiet)) if quiet.size else 1.0
    return [float(n) * seg_s for n in lasts - firsts], contrast, [float(a) * seg_s for a in firsts]


def _movement(span: SpasmSpan) -> dict[str, float]:
    """Rotation and jerk at the onset, the sagittal sign of the rotation, and the posture held after it."""
    out = {"moved_deg": math.nan, "jerk_g": math.nan, "sagittal_deg": math.nan, "held_deg": math.nan}
    out["return_g"] = math.nan
    if span.gravity is None or span.activity is None or span.window_t is None:
        return out
    g, t = span.gravity, span.window_t
    if t[0] > -PRE_S + 1e-9:  # the onset is out of reach (a spasm of over 50 s): its movement is not seen
        return out
    before = int(np.flatnonzero(t <= -PRE_S + 1e-9)[-1])
    onset = np.flatnonzero((t > 0) & (t <= MOVE_WITHIN_S + 2.0))  # 2 s ACC windows that hold the onset move
    if onset.size == 0:
        return out
    angles = _angle_deg(g[before], g[onset])
    k = int(onset[np.argmax(angles)])
    out["moved_deg"] = float(angles.max())
    out["jerk_g"] = float(span.activity[onset].max())
    out["sagittal_deg"] = _sagittal_deg(g[before], g[k])
    back = (t >= span.duration_s + RETURN_FROM_S) & (t <= span.duration_s + RETURN_FROM_S + 2.0)
    if back.any():
        out["return_g"] = float(span.activity[back].max())
    after = t >= span.duration_s + HELD_AFTER_S - 1e-9
    if after.any():
        out["held_deg"] = float(_angle_deg(g[before], g[np.flatnonzero(after)[:1]])[0])
    return out


def _angle_deg(a: FloatArray, b: FloatArray) -> FloatArray:
    cos = np.clip(np.atleast_2d(b) @ a, -1.0, 1.0)
    out: FloatArray = np.degrees(np.arccos(cos))
    return out


def _sagittal_deg(a: FloatArray, b: FloatArray) -> float:
    """Signed rotation about the sensor's y axis from gravity ``a`` to ``b`` (NaN lying on the side)."""
    if math.hypot(a[0], a[2]) < SAGITTAL_MIN or math.hypot(b[0], b[2]) < SAGITTAL_MIN:
        return math.nan
    turn = math.atan2(b[0], b[2]) - math.atan2(a[0], a[2])
    return math.degrees((turn + math.pi) % (2 * math.pi) - math.pi)
