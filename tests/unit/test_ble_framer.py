"""The framer: batching into frames, numbering, timing, and how gaps are handed to the detector."""

from __future__ import annotations

import numpy as np

from collector.ble.framer import Framer
from collector.ble.profile import SampleBlock, StreamSpec
from crampwatch.frames import FLAG_END_OF_STREAM, Channel, StreamKind

SPEC = StreamSpec(StreamKind.EMG, 10.0, (Channel("calf", "uV", 2.0),))
PERIOD = 100_000_000  # ns at 10 Hz
HOST0 = 1_800_000_000_000_000_000


def block(values: list[int], *, lost: int = 0, t_device_ns: int | None = None) -> SampleBlock:
    return SampleBlock(StreamKind.EMG, np.array(values, dtype=np.int16)[:, None], lost, t_device_ns)


def test_blocks_are_batched_into_numbered_frames_timed_by_sample_count() -> None:
    framer = Framer(SPEC, first_seq=0, frame_s=1.0)
    frames = []
    for i in range(7):  # 3 samples per notification, received with host jitter
        frames += framer.push(block([3 * i, 3 * i + 1, 3 * i + 2]), HOST0 + (i + 1) * 3 * PERIOD + (i % 2) * 7_000_000)
    frames += framer.flush()
    assert [f.seq for f in frames] == [0, 1, 2]
    assert [f.n_samples for f in frames] == [10, 10, 1]
    assert np.concatenate([f.data for f in frames])[:, 0].tolist() == list(range(21))
    assert frames[0].t0_ns == HOST0  # host receive time minus the first block's duration
    assert [f.t0_ns - frames[0].t0_ns for f in frames] == [0, 10 * PERIOD, 20 * PERIOD]  # no jitter
    assert frames[0].values()[:, 0].tolist() == [2.0 * v for v in range(10)]


def test_a_device_side_gap_skips_a_seq_number_and_shifts_time_by_the_lost_samples() -> None:
    framer = Framer(SPEC, first_seq=0, frame_s=1.0)
    frames = framer.push(block(list(range(4))), HOST0 + 4 * PERIOD)
    frames += framer.push(block([10, 11], lost=6), HOST0 + 12 * PERIOD)
    frames += framer.flush()
    assert [(f.seq, f.n_samples) for f in frames] == [(0, 4), (2, 2)]
    assert frames[1].t0_ns == frames[0].t0_ns + 10 * PERIOD  # 4 received + 6 lost


def test_a_reconnect_skips_a_seq_number_and_restarts_time_from_the_host_clock() -> None:
    framer = Framer(SPEC, first_seq=0, frame_s=1.0)
    frames = framer.push(block(list(range(5))), HOST0 + 5 * PERIOD)
    frames += framer.reconnected()
    frames += framer.push(block([7, 8]), HOST0 + 60 * PERIOD)  # back 5.5 s later
    frames += framer.flush()
    assert [f.seq for f in frames] == [0, 2]
    assert frames[1].t0_ns == HOST0 + 58 * PERIOD


def test_a_restarted_collector_marks_a_gap_before_its_first_frame() -> None:
    framer = Framer(SPEC, first_seq=41, frame_s=1.0)
    framer.reconnected()  # the first connection of the new process
    frames = framer.push(block(list(range(10))), HOST0)
    assert [f.seq for f in frames] == [42]


def test_device_timestamps_keep_exact_spacing_on_the_host_epoch() -> None:
    framer = Framer(SPEC, first_seq=0, frame_s=0.5)
    device0 = 5_000_000_000  # device clock: 5 s after its boot
    frames = framer.push(block([1, 2, 3], t_device_ns=device0), HOST0)
    frames += framer.push(block([4, 5, 6], t_device_ns=device0 + 3 * PERIOD), HOST0 + 123_456_789)
    frames += framer.push(block([9], t_device_ns=device0 + 9 * PERIOD), HOST0 + 999)  # clock jump: 2 lost
    frames += framer.flush(end_of_stream=True)
    assert [(f.seq, f.n_samples) for f in frames] == [(0, 5), (1, 1), (3, 1)]
    assert frames[0].t0_ns == HOST0 - 2 * PERIOD  # anchored once: host time of the last sample received
    assert frames[1].t0_ns == frames[0].t0_ns + 5 * PERIOD
    assert frames[2].t0_ns == frames[0].t0_ns + 9 * PERIOD
    assert frames[2].flags == FLAG_END_OF_STREAM and frames[1].flags == 0
