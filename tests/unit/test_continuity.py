"""crampwatch.continuity and its consumers, without servers or a model: verdicts, filler, memory, units."""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collector.recorder import Recorder
from collector.sources.replay import ReplaySource
from crampwatch.continuity import (
    FILL_BLOCK_S,
    MAX_FILL_S,
    Step,
    StreamContinuity,
    drop_annotated_gaps,
)
from crampwatch.errors import StreamError
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.recording import Annotation, Recording, Signal
from crampwatch.units import factor, factors, to_g, to_microvolts
from detector.stream import DeviceStreams

RATE = 1000.0
START_NS = 1_767_394_800_000_000_000
MB = 1 << 20


def frames(kind: StreamKind, seconds: float, *, rate: float = RATE, frame_s: float = 0.5, seq: int = 0,
           t0_ns: int = START_NS, n_channels: int = 2, unit: str = "") -> Iterator[Frame]:  # fmt: skip
    """Consecutive frames of a stream, values 1 in ``unit`` (default mV; ACC: 3 axes in g, lying still)."""
    unit = unit or ("g" if kind is StreamKind.ACC else "mV")
    n = round(frame_s * rate)
    chans = tuple(Channel(f"c{i}", unit) for i in range(3 if kind is StreamKind.ACC else n_channels))
    value = np.array([0.0, 0.0, 1.0]) if kind is StreamKind.ACC else np.ones(len(chans))
    for i in range(round(seconds / frame_s)):
        t = t0_ns + round(i * n * 1e9 / rate)
        yield Frame(kind, seq + i, t, rate, chans, np.tile(value, (n, 1)).astype(np.float32))


def after_dropout(fs: list[Frame], dropout_s: float, frame_s: float = 0.5) -> list[Frame]:
    """``fs`` moved later by a dropout whose frames were lost (as a silent device would send them)."""
    lost = round(dropout_s / frame_s)
    return [dataclasses.replace(f, t0_ns=f.t0_ns + round(dropout_s * 1e9), seq=f.seq + lost) for f in fs]


def test_verdicts_next_duplicate_gap_break() -> None:
    fs = list(frames(StreamKind.EMG, 5.0))
    c = StreamContinuity(fs[0])
    assert c.check(fs[0]) == (Step.NEXT, None)
    c.accept(fs[0])
    assert c.check(fs[0])[0] is Step.DUPLICATE
    step, gap = c.check(fs[3])  # frames 1 and 2 lost
    assert step is Step.GAP and gap is not None
    assert (gap.first_seq, gap.last_seq, gap.missing, gap.start_ns) == (1, 2, 1000, fs[1].t0_ns)
    late = after_dropout([fs[1]], MAX_FILL_S + 1.0)[0]
    step, gap = c.check(late)
    assert step is Step.BREAK and gap is not None and gap.duration_s == pytest.approx(MAX_FILL_S + 1.0)
    renumbered = dataclasses.replace(fs[1], seq=7)  # the counter jumped, device time did not
    step, gap = c.check(renumbered)
    assert step is Step.GAP and gap is not None and gap.missing == 0 and list(c.filler(gap)) == []
    assert (c.stats.duplicates, c.stats.gaps, c.stats.lost_samples) == (1, 3, 1000 + round((MAX_FILL_S + 1) * RATE))


def test_filler_comes_in_bounded_blocks_and_holds_acc() -> None:
    acc = list(frames(StreamKind.ACC, 1.0, rate=50.0))
    c = StreamContinuity(acc[0])
    c.accept(acc[0])
    step, gap = c.check(after_dropout([acc[1]], 60.0)[0])
    assert step is Step.GAP and gap is not None
    blocks = list(c.filler(gap))
    assert max(b.shape[0] for b in blocks) <= FILL_BLOCK_S * 50.0
    assert sum(b.shape[0] for b in blocks) == gap.missing == 60 * 50
    assert all(np.array_equal(b, np.tile([0.0, 0.0, 1.0], (b.shape[0], 1))) for b in blocks)


def test_units_are_converted_once_with_the_same_numbers() -> None:
    f = next(frames(StreamKind.EMG, 0.5, unit="mV"))
    assert np.array_equal(StreamContinuity(f).accept(f), f.values() * to_microvolts("mV"))
    assert factor(StreamKind.EMG, "microvolts") == to_microvolts("uV") == 1.0
    assert factor(StreamKind.ACC, "m/s^2") == to_g("m/s^2")
    assert factors(StreamKind.ACC, ["g", "mg", "m/s2"]).tolist() == [1.0, 1e-3, to_g("m/s2")]
    bad = next(frames(StreamKind.EMG, 0.5, unit="furlongs"))
    with pytest.raises(StreamError, match="unknown EMG unit 'furlongs'"):
        StreamContinuity(bad)


def test_a_two_hour_break_costs_the_detector_no_filler() -> None:
    before = list(frames(StreamKind.EMG, 30.0, n_channels=8))
    later = after_dropout(list(frames(StreamKind.EMG, 30.0, n_channels=8, seq=60, t0_ns=START_NS + 30 * 10**9)), 7200)
    streams = DeviceStreams(None, "p", "d", expect_acc=False, keep_features=True)
    for f in before:
        streams.on_frame(f)
    tracemalloc.start()
    out = streams.on_frame(later[0])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * MB, f"{peak / MB:.0f} MB for the frame after a 2 h dropout"
    for f in later[1:]:
        out.extend(streams.on_frame(f))
    out.extend(streams.finish())
    assert streams.epochs == 2
    assert out.window_end_s is not None
    ends = out.window_end_s  # windows on the device's timeline: none inside the dropout
    assert ends.max() == 7260.0 and not np.any((ends > 30.0) & (ends < 7200 + 30))
    stats = streams.stats(StreamKind.EMG)
    assert stats is not None and (stats.gaps, stats.lost_samples) == (1, 7200 * RATE)


def test_acc_arriving_first_after_a_break_still_counts_the_emg_gap() -> None:
    emg = list(frames(StreamKind.EMG, 20.0))
    acc = list(frames(StreamKind.ACC, 20.0, rate=50.0))
    order = sorted([*emg[:20], *acc[:20]], key=lambda f: (f.t0_ns + f.duration_ns, f.kind is StreamKind.ACC))
    rest = after_dropout([*acc[20:21], *emg[20:]], 3600.0) + after_dropout(acc[21:], 3600.0)
    streams = DeviceStreams(None, "p", "d", expect_acc=True, keep_features=True)
    out = streams.on_frame(order[0])
    for f in [*order[1:], *rest]:
        out.extend(streams.on_frame(f))
    out.extend(streams.finish())
    emg_stats, acc_stats = streams.stats(StreamKind.EMG), streams.stats(StreamKind.ACC)
    assert emg_stats is not None and acc_stats is not None
    assert (emg_stats.gaps, emg_stats.lost_samples) == (1, 3600 * RATE)
    assert (acc_stats.gaps, acc_stats.lost_samples) == (1, 3600 * 50)
    assert streams.epochs == 2
    assert out.window_end_s is not None
    ends = out.window_end_s
    assert not np.any((ends > 10.5) & (ends < 3600 + 10))  # no window inside the dropout


def test_recorder_fills_a_two_hour_gap_on_disk_not_in_memory(tmp_path: Path) -> None:
    emg = list(frames(StreamKind.EMG, 20.0, n_channels=8))
    sent = [*emg[:10], *after_dropout(emg[10:], 7200.0)]
    recorder = Recorder(tmp_path, patient="p", device="d")
    try:
        for f in sent[:10]:
            recorder.add(f)
        tracemalloc.start()
        recorder.add(sent[10])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 20 * MB, f"{peak / MB:.0f} MB to fill a 2 h gap"
        for f in sent[11:]:
            recorder.add(f)
        rec = recorder.recording(str(tmp_path))
        assert rec.emg.n_samples == (20 + 7200) * RATE  # the file's time axis is device time
        assert rec.annotations == (Annotation("gap", 5.0, 7205.0, "emg"),)
        np.testing.assert_array_equal(rec.emg.data[-1000:], 1000.0)  # mV -> uV, after the gap
    finally:
        recorder.close()


def test_recorder_stops_at_a_clock_jump_and_keeps_what_came(tmp_path: Path) -> None:
    emg = list(frames(StreamKind.EMG, 10.0))
    sent = [*emg[:10], *after_dropout(emg[10:], 3 * 86400.0)]
    recorder = Recorder(tmp_path, patient="p", device="d")
    try:
        for f in sent:
            recorder.add(f)
        assert recorder.done and recorder.stopped is not None and "clock was reset" in recorder.stopped
        assert recorder.recording(str(tmp_path)).emg.n_samples == 5 * RATE
    finally:
        recorder.close()


def test_offline_detection_cuts_the_recorders_gap_filler_back_out() -> None:
    n = 60 * 500
    emg = Signal(StreamKind.EMG, 500.0, ("a", "b"), np.ones((n, 2)))
    acc = Signal(StreamKind.ACC, 50.0, ("x", "y", "z"), np.tile([0.0, 0.0, 1.0], (60 * 50 - 25, 1)), t0_s=0.5)
    gaps = (Annotation("gap", 10.0, 25.0, "emg"), Annotation("gap", 10.3, 24.7, "acc"))  # on the sample grids
    rec = Recording(emg, acc, (*gaps, Annotation("cramp", 30.0, 40.0)))
    out = list(rec.frames(2.0))
    for kind, signal, (a, b) in ((StreamKind.EMG, emg, (10.0, 25.0)), (StreamKind.ACC, acc, (10.3, 24.7))):
        fs = [f for f in out if f.kind is kind]
        t = np.concatenate([f.t0_ns / 1e9 + np.arange(f.n_samples) / f.rate_hz for f in fs])
        assert not np.any((t >= a) & (t < b)) and t.size == signal.n_samples - round((b - a) * signal.rate_hz)
        holes = [(p, q) for p, q in itertools.pairwise(fs) if q.seq != p.seq + 1]
        assert len(holes) == 1 and holes[0][1].seq == holes[0][0].seq + 2
        assert holes[0][1].t0_ns - (holes[0][0].t0_ns + holes[0][0].duration_ns) == round((b - a) * 1e9)
    plain = list(emg.frames(2.0))  # without gap annotations (a simulated night) frames pass untouched
    assert all(a is b for a, b in zip(plain, drop_annotated_gaps(plain, rec.annotations[2:]), strict=True))
    streams = DeviceStreams(None, "p", "d", expect_acc=True)
    for f in out:
        streams.on_frame(f)
    emg_stats = streams.stats(StreamKind.EMG)
    assert emg_stats is not None and (emg_stats.gaps, emg_stats.lost_samples) == (1, 15 * 500)


def test_replay_sends_what_offline_detection_reads_around_a_recorded_gap() -> None:
    emg = Signal(StreamKind.EMG, 500.0, ("a",), np.ones((40 * 500, 1)))
    acc = Signal(StreamKind.ACC, 50.0, ("x", "y", "z"), np.tile([0.0, 0.0, 1.0], (40 * 50, 1)))
    rec = Recording(emg, acc, (Annotation("gap", 10.0, 30.0, "emg"), Annotation("gap", 10.0, 30.0, "acc")))
    replayed = [(f.kind, f.seq, f.t0_ns - START_NS, f.n_samples) for f in ReplaySource(rec, 2.0, START_NS).frames()]
    offline = [(f.kind, f.seq, f.t0_ns, f.n_samples) for f in rec.frames(2.0)]
    assert replayed == offline
    assert sum(n for kind, _, _, n in offline if kind is StreamKind.EMG) == 20 * 500
