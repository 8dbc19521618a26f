"""The one frame cutter and the one merge that every source uses (crampwatch.framing)."""

from __future__ import annotations

import numpy as np

from crampwatch.frames import FLAG_END_OF_STREAM, Channel, Frame, StreamKind
from crampwatch.framing import FrameCutter, merge_by_end_time

CHANNELS = (Channel("calf", "uV"),)


def cutter(*, hold_last_sample: bool = True, first_seq: int = 0, dtype: str | None = None) -> FrameCutter:
    """33 samples a frame at 333 Hz: 99,099,099.1 ns, so rounding would accumulate if it could."""
    return FrameCutter(
        StreamKind.EMG,
        333.0,
        CHANNELS,
        frame_s=0.1,
        start_ns=10**18,
        first_seq=first_seq,
        dtype=dtype,
        hold_last_sample=hold_last_sample,
    )


def test_blocks_of_any_size_give_the_same_frames_as_one_block() -> None:
    data = np.arange(1000, dtype=np.float64)[:, None]
    whole = cutter()
    one = whole.push(data) + whole.flush(end_of_stream=True)
    pieces = cutter()
    many: list[Frame] = []
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, 1000), 40, replace=False))
    for part in np.split(data, cuts):
        many += pieces.push(part)
    many += pieces.flush(end_of_stream=True)

    def shape(frames: list[Frame]) -> list[tuple[int, int, int, int]]:
        return [(f.seq, f.t0_ns, f.n_samples, f.flags) for f in frames]

    assert shape(one) == shape(many)
    assert np.array_equal(np.vstack([f.data for f in many]), data)
    assert [f.n_samples for f in one] == [33] * 30 + [10]
    assert [f.flags for f in one] == [0] * 30 + [FLAG_END_OF_STREAM]


def test_times_are_exact_from_the_anchor_without_accumulated_rounding() -> None:
    c = cutter()
    frames = c.push(np.zeros((3330, 1))) + c.flush()
    assert [f.t0_ns for f in frames] == [10**18 + round(k * 33 * 1e9 / 333.0) for k in range(len(frames))]


def test_the_last_sample_is_held_so_the_end_of_stream_flag_has_a_frame() -> None:
    held = cutter()
    assert len(held.push(np.zeros((66, 1)))) == 1 and held.pending == 33
    assert [f.flags for f in held.flush(end_of_stream=True)] == [FLAG_END_OF_STREAM]
    eager = cutter(hold_last_sample=False)
    assert len(eager.push(np.zeros((66, 1)))) == 2 and eager.flush(end_of_stream=True) == []


def test_a_gap_skips_one_sequence_number_and_a_push_with_a_time_reanchors() -> None:
    c = cutter(hold_last_sample=False, first_seq=7)
    frames = c.push(np.zeros((33, 1)))
    c.mark_gap()
    c.mark_gap()  # however often: one skipped number per gap
    frames += c.push(np.zeros((33, 1)), time_ns=2 * 10**18)
    assert [f.seq for f in frames] == [7, 9]
    assert frames[1].t0_ns == 2 * 10**18


def test_payload_dtype_is_cast_when_asked() -> None:
    c = cutter(dtype="int16", hold_last_sample=False)
    (frame,) = c.push(np.arange(33, dtype=np.int32)[:, None])
    assert frame.data.dtype == np.int16 and frame.data.flags.c_contiguous


def frame(kind: StreamKind, t0_s: float, n: int, rate: float) -> Frame:
    return Frame(kind, 0, round(t0_s * 1e9), rate, CHANNELS, np.zeros((n, 1)))


def test_merge_orders_by_end_time_with_the_earlier_stream_first_on_ties() -> None:
    emg = [frame(StreamKind.EMG, t, 100, 100.0) for t in (0.0, 1.0, 2.0)]  # end 1, 2, 3 s
    acc = [frame(StreamKind.ACC, t, 50, 100.0) for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)]  # end 0.5 ... 3 s
    order = [(i, f.t0_ns + f.duration_ns) for i, f in merge_by_end_time([emg, acc])]
    assert order == sorted(order, key=lambda item: (item[1], item[0]))
    assert order[1] == (0, 10**9) and order[2] == (1, 10**9)


def test_merge_counts_from_each_stream_start_when_given() -> None:
    late = [frame(StreamKind.EMG, 1000.0 + t, 100, 100.0) for t in (0.0, 1.0)]
    early = [frame(StreamKind.EMG, t, 100, 100.0) for t in (0.0, 1.0)]
    merged = [i for i, _ in merge_by_end_time([late, early], start_ns=[1000 * 10**9, 0])]
    assert merged == [0, 1, 0, 1]
