"""Bad input at the detector's edge (issue 17, "Bad input"): refused with a reason, never fatal, never silencing.

The frames here are the ones an outside probe used to stop or silence the live detector: a 10 Hz EMG frame,
a claimed 1 MHz rate, absurd scales, a forged far-ahead sequence number, ids that collide as InfluxDB tags,
and a flood of device ids.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from crampwatch import wire
from crampwatch.continuity import MAX_FILL_S, MAX_SEQ_JUMP, Step, StreamContinuity
from crampwatch.errors import ConfigError, CrampWatchError, FrameError, StreamError
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.limits import MAX_DEVICE_TIME_NS, MAX_LIVE_FRAME_S, MAX_LIVE_FRAME_VALUES, check_frame
from crampwatch.topics import MAX_ID_LEN, check_id
from detector.config import DetectorSettings
from detector.events import Event, Summary
from detector.model import Model
from detector.service import INVALID_ID_KEY, DetectorService
from detector.stream import DeviceStreams

START_NS = 1_767_394_800_000_000_000
RATE = 1000.0


def emg(seq: int, t0_ns: int, *, rate: float = RATE, n: int = 250, n_channels: int = 2, scale: float = 0.5) -> Frame:
    chans = tuple(Channel(f"c{i}", "uV", scale) for i in range(n_channels))
    data = (np.arange(n * n_channels, dtype=np.int16) % 50).reshape(n, n_channels)
    return Frame(StreamKind.EMG, seq, t0_ns, rate, chans, data)


def stream(count: int, *, seq: int = 0, t0_ns: int = START_NS) -> Iterator[Frame]:
    """``count`` consecutive 0.25 s EMG frames."""
    for i in range(count):
        yield emg(seq + i, t0_ns + i * 250_000_000)


# ------------------------------------------------------------------------------------------ physical limits


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (emg(0, START_NS, rate=10.0, n=3), "EMG rate 10 Hz is outside"),
        (emg(0, START_NS, rate=1e6, n=3), "EMG rate 1e+06 Hz"),
        (emg(0, START_NS, n_channels=17), "17 channels"),
        (emg(0, START_NS, n=round(RATE * MAX_LIVE_FRAME_S) + 1), "more than 60 s"),
        (emg(0, START_NS, rate=10_000.0, n=200_000, n_channels=16), "more than the 2000000 allowed"),
        (emg(0, START_NS, scale=0.0), "need scale > 0"),
        (emg(0, START_NS, scale=-1.0), "need scale > 0"),
        (emg(0, START_NS, scale=float("inf")), "need scale > 0"),
        (emg(0, START_NS, scale=1e300), "beyond the physical"),
        (emg(0, -1), "device time -1 ns"),
        (emg(0, MAX_DEVICE_TIME_NS), "year 2200"),
        (dataclasses.replace(emg(0, START_NS), kind=StreamKind.ACC), "ACC frame has 2 channels"),
    ],
)
def test_frames_beyond_physical_limits_are_refused_with_the_limit(frame: Frame, words: str) -> None:
    with pytest.raises(FrameError, match=words.replace("+", r"\+")):
        check_frame(frame, max_frame_s=MAX_LIVE_FRAME_S, max_values=MAX_LIVE_FRAME_VALUES)
    # and DeviceStreams refuses them before any state changes
    streams = DeviceStreams(None, "p", "d", max_frame_s=MAX_LIVE_FRAME_S, max_frame_values=MAX_LIVE_FRAME_VALUES)
    with pytest.raises(FrameError):
        streams.on_frame(frame)
    assert streams.streams == {} and streams.pipeline is None


def test_real_sensor_frames_pass() -> None:
    for rate in (100.0, 200.0, 1000.0, 2000.0, 10_000.0):
        check_frame(emg(0, 0, rate=rate, n=max(1, round(rate / 4))))
    acc = Frame(StreamKind.ACC, 0, 0, 52.0, tuple(Channel(c, "m/s^2", 0.01) for c in "xyz"), np.zeros((13, 3)))
    check_frame(acc)
    check_frame(emg(0, START_NS, n=0))  # an empty frame is no problem


def test_unknown_units_stay_a_stream_error() -> None:
    frame = dataclasses.replace(emg(0, START_NS), channels=(Channel("a", "furlongs"), Channel("b", "uV")))
    with pytest.raises(StreamError, match="furlongs"):
        check_frame(frame)


# ------------------------------------------------------------------------------------------------------ ids


@pytest.mark.parametrize(
    "value", ["", "a+", "#", "a/b", "dev\\", "dev ", "a,b", "a=b", 'a"b', "x" * (MAX_ID_LEN + 1), "ab\n", "é"]
)
def test_ids_that_are_no_single_safe_level_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="device id"):
        check_id(value, "device id")


def test_good_ids_pass() -> None:
    for value in ("p1", "sim", "Patient_07.left-leg", "x" * MAX_ID_LEN):
        assert check_id(value, "id") == value


# ------------------------------------------------------------------------------------------ jumps and epochs


def test_a_forged_far_ahead_sequence_number_does_not_silence_the_real_frames() -> None:
    real = list(stream(40))
    forged = emg(10**12, real[20].t0_ns)  # same device time, counter far ahead
    streams = DeviceStreams(None, "p", "d", expect_acc=False)
    for f in real[:20]:
        streams.on_frame(f)
    streams.on_frame(forged)
    for f in real[20:]:
        streams.on_frame(f)
    stats = streams.stats(StreamKind.EMG)
    assert stats is not None
    # Only the real frame of the very time the forged one claimed is taken for its duplicate.
    assert stats.duplicates == 1
    assert stats.frames == 40  # every other real frame, and the forged one
    assert streams.epochs == 3  # the forged frame's own epoch, then the real stream again
    assert stats.jumps == 2


def test_a_forged_frame_stamped_ahead_silences_at_most_the_time_it_claimed() -> None:
    real = list(stream(80))  # 20 s
    forged = emg(25, real[20].t0_ns + 5_000_000_000)  # 5 s ahead, next seq but five
    streams = DeviceStreams(None, "p", "d", expect_acc=False)
    for f in real[:20]:
        streams.on_frame(f)
    streams.on_frame(forged)
    for f in real[20:]:
        streams.on_frame(f)
    stats = streams.stats(StreamKind.EMG)
    assert stats is not None
    assert stats.duplicates <= 5 * 4 + 1  # 5 s of 0.25 s frames, and the one the forged frame covers
    assert stats.frames >= 80 - stats.duplicates


def test_a_restarted_device_counting_from_zero_starts_a_new_epoch() -> None:
    streams = DeviceStreams(None, "p", "d", expect_acc=False)
    for f in stream(20, seq=1000):
        streams.on_frame(f)
    for f in stream(20, seq=0, t0_ns=START_NS + 60_000_000_000):
        streams.on_frame(f)
    stats = streams.stats(StreamKind.EMG)
    assert stats is not None and stats.duplicates == 0 and stats.frames == 40 and streams.epochs == 2


def test_a_forged_first_frame_in_another_format_does_not_make_the_real_stream_unusable() -> None:
    streams = DeviceStreams(None, "p", "d", expect_acc=False)
    streams.on_frame(emg(0, START_NS, rate=2000.0, n=500, n_channels=4))  # forged: other rate and channels
    for f in stream(20):
        streams.on_frame(f)
    stats = streams.stats(StreamKind.EMG)
    assert stats is not None and stats.frames == 21 and stats.duplicates == 0 and streams.epochs == 2
    assert streams.streams[StreamKind.EMG].rate_hz == RATE


def test_jumps_beyond_the_bounds_are_breaks_with_a_reason() -> None:
    first = emg(0, START_NS)
    c = StreamContinuity(first)
    c.accept(first)
    ahead = emg(1 + MAX_SEQ_JUMP + 1, START_NS + 250_000_000)
    step, gap = c.check(ahead)
    assert step is Step.BREAK and gap is not None and "jumped ahead" in gap.reason
    back_in_time = emg(1, START_NS - round((MAX_FILL_S + 5) * 1e9))
    step, gap = c.check(back_in_time)
    assert step is Step.BREAK and gap is not None and "device time jumped by -" in gap.reason
    later = emg(1, START_NS + round((MAX_FILL_S + 5) * 1e9))
    step, gap = c.check(later)
    assert step is Step.BREAK and gap is not None and "no frame missing" in gap.reason
    # within the bounds nothing changed: the next frame, a redelivery, a short gap
    assert c.check(emg(1, START_NS + 250_000_000)) == (Step.NEXT, None)
    assert c.check(first) == (Step.DUPLICATE, None)
    assert c.check(emg(3, START_NS + 750_000_000))[0] is Step.GAP


# ---------------------------------------------------------------------------------------------- the service


class CollectingSink:
    name = "collect"

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.summaries: list[Summary] = []

    def write_events(self, events: list[Event]) -> None:
        self.events += events

    def write_summaries(self, summaries: list[Summary]) -> None:
        self.summaries += summaries

    def close(self) -> None:
        pass


def make_service(tmp_path: Path, **settings: object) -> tuple[DetectorService, CollectingSink]:
    cfg = DetectorSettings.model_validate(
        {"dead_letter_file": tmp_path / "dead.jsonl", "publish_events": False, **settings}
    )
    sink = CollectingSink()
    return DetectorService(cfg, cast(Model, None), sinks=[sink]), sink


def dead_letters(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def topic(patient: str, device: str, kind: str = "emg") -> str:
    return f"cramp/v1/{patient}/{device}/{kind}"


def test_the_service_dead_letters_bad_frames_with_reasons_and_goes_on(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path)
    try:
        service.handle(topic("p1", "d1"), wire.encode(emg(0, START_NS, rate=10.0, n=3)))
        service.handle(topic("p1", "d1 "), wire.encode(emg(0, START_NS)))
        service.handle(topic("p1", ""), wire.encode(emg(0, START_NS)))
        service.handle(topic("p1", "d1"), b"CW\x01garbage")
        for f in stream(8):
            service.handle(topic("p1", "d1"), wire.encode(f))
    finally:
        service.sinks.close()
    assert service.stats.rejected_frames == 4
    assert service.stats.rejected_by_device == {"p1/d1": 2, INVALID_ID_KEY: 2}
    lines = dead_letters(tmp_path / "dead.jsonl")
    reasons = [str(x["reason"]) for x in lines]
    assert "EMG rate 10 Hz is outside the physical range 100-10000 Hz" in reasons[0]
    assert "contains ' '" in reasons[1] and "is empty" in reasons[2] and "shorter than" in reasons[3]
    assert all(x["sink"] == "detector" and x["kind"] == "frame" for x in lines)
    assert lines[0]["record"] == {
        "topic": topic("p1", "d1"),
        "bytes": len(wire.encode(emg(0, START_NS, rate=10.0, n=3))),
        "stream": "emg",
        "seq": 0,
        "t0_ns": START_NS,
        "rate_hz": 10.0,
        "channels": 2,
        "samples": 3,
    }
    assert ("p1", "d1") in service.devices and service.devices[("p1", "d1")].epochs == 1


def test_an_unexpected_error_is_survived_logged_and_dead_lettered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = make_service(tmp_path)

    def explode(self: DeviceStreams, frame: Frame) -> object:
        raise np.linalg.LinAlgError("SVD did not converge")

    try:
        with monkeypatch.context() as m, caplog.at_level(logging.ERROR, logger="detector.service"):
            m.setattr(DeviceStreams, "on_frame", explode)
            for f in stream(30):
                service.handle(topic("p1", "d1"), wire.encode(f))
        for f in stream(4, seq=30, t0_ns=START_NS + 30 * 250_000_000):  # later frames are taken again
            service.handle(topic("p1", "d1"), wire.encode(f))
    finally:
        service.sinks.close()
    assert service.stats.internal_errors == 30
    assert service.devices[("p1", "d1")].stats(StreamKind.EMG) is not None
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) <= 5, "internal errors are rate-limited"
    assert "p1/d1" in caplog.records[0].getMessage()
    reasons = {str(x["reason"]) for x in dead_letters(tmp_path / "dead.jsonl")}
    assert reasons == {"internal error LinAlgError: SVD did not converge"}


def test_streams_are_bounded_and_idle_ones_are_finished_then_freed(tmp_path: Path) -> None:
    service, sink = make_service(tmp_path, max_devices=3, device_idle_s=60.0)
    try:
        for i in range(5):
            for f in stream(8):
                service.handle(topic("p", f"d{i}"), wire.encode(f))
        assert len(service.devices) == 3
        assert service.stats.rejected_by_device == {"p/d3": 8, "p/d4": 8}
        assert "3 devices are streaming already" in str(dead_letters(tmp_path / "dead.jsonl")[0]["reason"])
        assert service.evict_idle() == 0  # nobody idle yet
        assert service.evict_idle(time.monotonic() + 61.0) == 3
        assert service.devices == {} and service.stats.evicted_devices == 3
        assert len(sink.summaries) == 3 * 2, "each evicted pipeline was finished: its last seconds were written"
        for f in stream(8):  # room again
            service.handle(topic("p", "d4"), wire.encode(f))
        assert ("p", "d4") in service.devices
    finally:
        service.sinks.close()


def test_a_flood_of_device_ids_keeps_memory_and_counters_bounded(tmp_path: Path) -> None:
    service, _ = make_service(tmp_path, max_devices=50)
    payload = wire.encode(emg(0, START_NS))
    try:
        for i in range(2000):
            service.handle(topic("p", f"fake{i}"), payload)
    finally:
        service.sinks.close()
    assert len(service.devices) == 50
    assert len(service.stats.rejected_by_device) <= 51  # 50 ids and "(other)"
    assert service.stats.rejected_frames == 1950


def test_serve_exits_non_zero_when_the_worker_dies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service, _ = make_service(tmp_path)

    def dying_handle(messages: list[tuple[str, bytes]]) -> None:
        raise SystemExit("simulated worker death")  # no Exception: handle_batch() lets it through

    def start() -> threading.Thread:
        worker = threading.Thread(target=service._work, daemon=True)
        worker.start()
        return worker

    monkeypatch.setattr(service, "handle_batch", dying_handle)
    monkeypatch.setattr(service, "start", start)
    service._inbox.put(("cramp/v1/p/d/emg", b"", service.client, 0, 0))
    assert service.run_forever() == 1
    assert isinstance(service.worker_error, SystemExit)


def test_every_refusal_is_a_project_error() -> None:
    assert issubclass(FrameError, CrampWatchError) and issubclass(StreamError, CrampWatchError)


def test_the_worker_goes_on_when_something_fails_outside_handles_own_net(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _ = make_service(tmp_path)

    def broken_dead_letter(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service, "_reject", broken_dead_letter)
    service._inbox.put((topic("p", "d"), b"junk", service.client, 0, 0))
    for f in stream(4):
        service._inbox.put((topic("p", "d"), wire.encode(f), service.client, 0, 0))
    service._inbox.put(None)
    try:
        service._work()  # in this thread: returns at the None
    finally:
        service.sinks.close()
    assert service.worker_error is None
    assert service.stats.internal_errors == 1
    assert service.devices[("p", "d")].stats(StreamKind.EMG) is not None
