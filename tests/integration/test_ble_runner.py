"""The BLE runner over a virtual radio: real bleak API, real ATT/GATT (bumble), fake peripherals speaking
each device's documented protocol, frames into the real spooling publisher.

No Bluetooth hardware, BlueZ or D-Bus is involved (tests/ble_backend.py). The publisher's paho client
never connects here, so every frame stays in the spool, where the tests read it back; the path on to a
real broker is covered in test_ble_mqtt.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pytest

from collector.ble.profile import get_profile
from collector.ble.profiles import crampwatch
from collector.ble.runner import Backoff, BleRunner, LinkState
from collector.publisher import FramePublisher
from crampwatch import wire
from crampwatch.frames import Frame, StreamKind
from crampwatch.mqtt import make_client
from tests.ble_backend import VirtualRadio
from tests.ble_fakes import FakeBitalino, FakeCrampWatchSensor, FakeGanglion, FakeMyo, FakePeripheral, FakePolar

pytestmark = pytest.mark.integration

F = TypeVar("F", bound=FakePeripheral)
FAST = Backoff(initial_s=0.05, max_s=0.3)


@pytest.fixture(autouse=True)
def _quiet_bumble() -> Iterator[None]:
    logging.getLogger("bumble").setLevel(logging.WARNING)
    yield


@dataclass
class Outcome:
    runner: BleRunner
    radio: VirtualRadio
    frames: list[Frame]

    def stream(self, kind: StreamKind) -> list[Frame]:
        return [f for f in self.frames if f.kind is kind]


def spooled_frames(publisher: FramePublisher) -> list[Frame]:
    return [wire.decode(row.payload) for row in publisher.spool.after(0, 1_000_000)]


def run(
    fake_type: type[F],
    script: Callable[[F, BleRunner], Awaitable[None]],
    *,
    profile: str,
    silence_s: float | None = None,
    publisher: FramePublisher | None = None,
) -> tuple[Outcome, F]:
    """Start a radio, the fake and a runner; run ``script``; stop the runner; return what was spooled."""
    owned = publisher is None
    publisher = publisher or offline_publisher()
    holder: list[tuple[Outcome, F]] = []

    async def main() -> None:
        radio = VirtualRadio()
        await radio.start()
        fake = fake_type(radio)
        await fake.start()
        runner = BleRunner(
            get_profile(profile),
            publisher,
            backend=radio.backend(),
            backoff=FAST,
            scan_timeout_s=1.0,
            silence_s=silence_s,
            rng=random.Random(7),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            await script(fake, runner)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        holder.append((Outcome(runner, radio, spooled_frames(publisher)), fake))

    try:
        asyncio.run(main())
    finally:
        if owned:
            publisher.close()
    return holder[0]


def offline_publisher() -> FramePublisher:
    """A real publisher whose client never reaches a broker: frames stay in its (in-memory) spool."""
    return FramePublisher(make_client("mqtt://127.0.0.1:1", "offline"), "cramp/v1", "p1", "dev1")


async def until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def seqs(frames: list[Frame]) -> list[int]:
    return [f.seq for f in frames]


def gaps(frames: list[Frame]) -> list[tuple[int, int]]:
    """(seq before, seq after) wherever the numbering skips: where the detector will see missing data."""
    return [(a.seq, b.seq) for a, b in itertools.pairwise(frames) if b.seq != a.seq + 1]


# -- CrampWatch sensor -----------------------------------------------------------------------------


def test_crampwatch_sensor_streams_decoded_frames_after_subscribing() -> None:
    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.samples.get(StreamKind.EMG, 0) >= 600, what="600 EMG samples")

    out, fake = run(FakeCrampWatchSensor, script, profile="crampwatch")
    assert fake.subscribed_at_start == [True]  # subscribed BEFORE the start command
    assert fake.connections == 1
    emg, acc = out.stream(StreamKind.EMG), out.stream(StreamKind.ACC)
    assert seqs(emg) == list(range(len(emg)))
    assert all(f.rate_hz == 500 and f.channels[0].unit == "uV" for f in emg)
    counts = np.concatenate([f.data for f in emg])
    first = int(counts[0, 0])
    assert counts[:, 0].tolist() == [(first + i) % 20000 for i in range(len(counts))]  # nothing lost or reordered
    uv = np.concatenate([f.values() for f in emg])
    assert uv[:, 0] == pytest.approx(counts[:, 0] * 4.0)
    assert uv[:, 1] == pytest.approx(-counts[:, 0] * 4.0)
    g = np.concatenate([f.values() for f in acc])
    assert g[:, 2] == pytest.approx(1.0)  # 1024 counts at 1/1024 g
    t = [f.t0_ns for f in emg]
    assert all(b - a == f.duration_ns for a, b, f in zip(t, t[1:], emg, strict=False))  # device clock spacing
    stats = out.runner.stats
    assert (stats.battery_pct, stats.rssi, stats.connections, stats.state) == (87, -50, 1, LinkState.STOPPED)
    assert stats.queue_drops == stats.stale_callbacks == stats.decoder_malformed == 0


def test_a_dropped_link_is_reconnected_resubscribed_and_marked_as_a_gap() -> None:
    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 4, what="streaming")
        await fake.drop()
        await until(lambda: fake.connections == 2 and runner.stats.state is LinkState.STREAMING, what="reconnect")
        before = runner.stats.frames[StreamKind.EMG]
        await until(lambda: runner.stats.frames[StreamKind.EMG] >= before + 4, what="streaming again")

    out, fake = run(FakeCrampWatchSensor, script, profile="crampwatch")
    assert fake.subscribed_at_start == [True, True]  # re-subscribed, then start re-sent, on the new link
    assert out.runner.stats.disconnects >= 1
    for kind in (StreamKind.EMG, StreamKind.ACC):
        frames = out.stream(kind)
        (gap,) = gaps(frames)
        assert gap[1] == gap[0] + 2  # one seq number skipped: the detector fills the outage
        before, after = next((a, b) for a, b in itertools.pairwise(frames) if b.seq == gap[1])
        assert after.t0_ns >= before.t0_ns + before.duration_ns  # time moves on across the outage


def test_out_of_range_sensor_is_searched_for_with_backoff_until_it_returns(caplog: pytest.LogCaptureFixture) -> None:
    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 2, what="streaming")
        await fake.go_away()
        await until(lambda: runner.stats.state is not LinkState.STREAMING, what="link lost")
        await asyncio.sleep(2.5)  # two scans of 1 s find nothing
        assert fake.connections == 1
        await fake.come_back()
        await until(lambda: fake.connections == 2 and runner.stats.state is LinkState.STREAMING, what="back")

    with caplog.at_level(logging.WARNING, logger="collector.ble.runner"):
        out, _fake = run(FakeCrampWatchSensor, script, profile="crampwatch")
    assert "not found for" in caplog.text and "within a few metres" in caplog.text
    assert out.runner.stats.connections == 2


def test_silence_watchdog_forces_a_reconnect_when_a_connected_link_goes_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 2, what="streaming")
        fake.stalled = True  # still connected, nothing arrives (BlueZ keeps Connected=True)
        await until(lambda: runner.stats.watchdog_resets >= 1, what="watchdog")
        fake.stalled = False
        await until(lambda: fake.connections >= 2 and runner.stats.state is LinkState.STREAMING, what="reconnect")

    with caplog.at_level(logging.WARNING, logger="collector.ble.runner"):
        out, fake = run(FakeCrampWatchSensor, script, profile="crampwatch", silence_s=0.5)
    assert "no data for" in caplog.text
    assert out.runner.stats.watchdog_resets >= 1
    assert fake.start_commands >= 2


def test_device_side_sequence_gaps_are_counted_and_timed_from_the_device_clock() -> None:
    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 2, what="streaming")
        fake.skip_ticks = 2  # two ticks' packets (EMG + ACC each) produced but never sent
        await until(lambda: runner.stats.device_gaps >= 2, what="gaps")
        before = runner.stats.frames[StreamKind.EMG]
        await until(lambda: runner.stats.frames[StreamKind.EMG] >= before + 2, what="more frames")

    out, _fake = run(FakeCrampWatchSensor, script, profile="crampwatch")
    n_emg = 20  # samples per EMG packet at 500 Hz x 40 ms
    assert out.runner.stats.device_lost_samples == {StreamKind.EMG: 2 * n_emg, StreamKind.ACC: 2 * 2}
    emg = out.stream(StreamKind.EMG)
    assert len(gaps(emg)) == 1
    counts = np.concatenate([f.data for f in emg])[:, 0].tolist()
    jumps = [b - a for a, b in itertools.pairwise(counts) if b != a + 1 and not (a == 19999 and b == 0)]
    assert jumps == [2 * n_emg + 1]  # exactly the two lost packets' samples are missing
    after_gap = next(b for a, b in itertools.pairwise(emg) if b.seq != a.seq + 1)
    previous = emg[emg.index(after_gap) - 1]
    missing_ns = after_gap.t0_ns - (previous.t0_ns + previous.duration_ns)
    assert missing_ns == pytest.approx(2 * n_emg * 2_000_000, abs=1000)  # 40 samples x 2 ms


def test_callbacks_from_a_superseded_client_are_ignored() -> None:
    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 2, what="streaming")
        await fake.drop()
        await until(lambda: fake.connections == 2 and runner.stats.state is LinkState.STREAMING, what="reconnect")
        old = fake.radio.clients[0]
        stale = runner.stats.stale_callbacks
        # A late notification and a late disconnect report from the first connection's client:
        bogus = bytes.fromhex("01 02 0000 00000000") + b"\x7f\x7f" * 4
        for _, callback in old.notify_callbacks:
            callback(bytearray(bogus))
        assert old._disconnected_callback is not None
        old._disconnected_callback()
        await asyncio.sleep(0.3)
        assert runner.stats.stale_callbacks == stale + 2
        assert runner.stats.state is LinkState.STREAMING  # the live connection was not disturbed
        assert fake.connections == 2

    out, _ = run(FakeCrampWatchSensor, script, profile="crampwatch")
    counts = np.concatenate([f.data for f in out.stream(StreamKind.EMG)])
    assert 0x7F7F not in counts[:, 0].tolist()


def test_stream_numbering_continues_from_the_spool_after_a_collector_restart() -> None:
    publisher = offline_publisher()

    async def script(fake: FakeCrampWatchSensor, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 3, what="streaming")

    try:
        first, _ = run(FakeCrampWatchSensor, script, profile="crampwatch", publisher=publisher)
        n_first = len(first.stream(StreamKind.EMG))
        second, _ = run(FakeCrampWatchSensor, script, profile="crampwatch", publisher=publisher)
    finally:
        publisher.close()
    emg = second.stream(StreamKind.EMG)
    assert seqs(emg)[:n_first] == list(range(n_first))
    assert emg[n_first].seq == n_first + 1  # the restart is a gap, not a silent splice


def test_backoff_is_capped_and_jittered() -> None:
    policy = Backoff(initial_s=1.0, max_s=30.0)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(12)]
    assert all(0.5 * min(30.0, 2.0**n) <= d <= min(30.0, 2.0**n) for n, d in enumerate(delays))
    assert max(delays) <= 30.0
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jittered, not a fixed cap


# -- commodity devices -----------------------------------------------------------------------------


def test_ganglion_resets_on_every_connection_and_gets_its_start_commands_again() -> None:
    async def script(fake: FakeGanglion, runner: BleRunner) -> None:
        await until(lambda: runner.stats.frames.get(StreamKind.EMG, 0) >= 4, what="streaming")
        await fake.drop()
        await until(lambda: fake.connections == 2 and runner.stats.state is LinkState.STREAMING, what="reconnect")
        before = runner.stats.frames[StreamKind.EMG]
        await until(lambda: runner.stats.frames[StreamKind.EMG] >= before + 4, what="streaming again")

    out, fake = run(FakeGanglion, script, profile="ganglion")
    assert fake.resets == 2 and fake.start_commands == 2 and fake.subscribed_at_start == [True, True]
    assert fake.accel  # 'n' re-sent after the reset
    emg = out.stream(StreamKind.EMG)
    assert len(gaps(emg)) == 1
    counts = np.concatenate([f.data for f in emg])
    assert counts.dtype == np.int32
    fields = counts[:, 0] >> 6
    assert np.all(fields % 2 == 0)  # channel 1 of the fake: 2 x (index % 1000), << 6 after decoding
    assert np.all(counts[:, 1] < 0)
    uv = np.concatenate([f.values() for f in emg])
    assert uv[:, 0] == pytest.approx(counts[:, 0] * 1.2e6 / (8388607 * 1.5 * 51))
    acc = np.concatenate([f.values() for f in out.stream(StreamKind.ACC)])
    assert acc[0].tolist() == pytest.approx([3 * 0.016, 2 * 0.016, 64 * 0.016])
    assert out.runner.stats.device_gaps == 0


def test_myo_streams_eight_channel_emg_and_imu_acceleration() -> None:
    async def script(fake: FakeMyo, runner: BleRunner) -> None:
        await until(lambda: runner.stats.samples.get(StreamKind.EMG, 0) >= 200, what="200 EMG samples")

    out, fake = run(FakeMyo, script, profile="myo")
    assert fake.never_sleep and fake.subscribed_at_start == [True]
    emg = out.stream(StreamKind.EMG)
    counts = np.concatenate([f.data for f in emg])
    assert counts.shape[1] == 8
    assert np.all(counts == counts[:, :1])
    first = int(counts[0, 0])
    assert counts[:, 0].tolist() == [(first + i) % 128 for i in range(len(counts))]
    acc = np.concatenate([f.values() for f in out.stream(StreamKind.ACC)])
    assert acc[:, 2] == pytest.approx(1.0)
    assert out.runner.stats.device_gaps == 0


def test_polar_pmd_start_is_acknowledged_and_acc_frames_keep_device_timestamps() -> None:
    async def script(fake: FakePolar, runner: BleRunner) -> None:
        await until(lambda: runner.stats.samples.get(StreamKind.ACC, 0) >= 200, what="200 ACC samples")

    out, fake = run(FakePolar, script, profile="polar")
    assert fake.replies[0] == bytes([0xF0, 0x02, 0x02, 0x00, 0x00])  # start ACC: success
    assert fake.subscribed_at_start == [True]  # control point (indications) and data, before start
    acc = out.stream(StreamKind.ACC)
    assert out.stream(StreamKind.EMG) == []
    assert seqs(acc) == list(range(len(acc)))
    g = np.concatenate([f.values() for f in acc])
    assert g[:, 1:].tolist() == [[-0.5, 1.0]] * len(g)
    first = round(g[0, 0] * 1000)
    assert np.round(g[:, 0] * 1000).astype(int).tolist() == [(first + i) % 1000 for i in range(len(g))]
    assert all(acc[i + 1].t0_ns - acc[i].t0_ns == acc[i].duration_ns for i in range(len(acc) - 1))


def test_bitalino_byte_stream_is_reassembled_from_notifications_into_emg() -> None:
    async def script(fake: FakeBitalino, runner: BleRunner) -> None:
        await until(lambda: runner.stats.samples.get(StreamKind.EMG, 0) >= 1000, what="1000 EMG samples")

    out, fake = run(FakeBitalino, script, profile="bitalino")
    assert fake.rate_hz == 1000 and fake.subscribed_at_start == [True]
    emg = out.stream(StreamKind.EMG)
    counts = np.concatenate([f.data for f in emg])
    first = int(counts[0, 0])
    assert counts[:, 0].tolist() == [(first + i) % 1024 for i in range(len(counts))]
    assert (counts[:, 0] + counts[:, 1]).tolist() == [1023] * len(counts)
    uv = np.concatenate([f.values() for f in emg])
    assert uv[:, 2] == pytest.approx(0.0, abs=1e-9)  # mid-scale = 0 µV
    assert out.runner.stats.device_gaps == 0 and out.runner.decoder.stats.malformed == 0


def test_a_device_without_the_profiles_service_is_refused_with_a_clear_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(fake: FakeMyo, runner: BleRunner) -> None:
        await until(lambda: runner.stats.failed_attempts >= 1, what="a refused attempt")

    class MyoNamedCrampWatch(FakeMyo):
        local_name = "CrampWatch-impostor"

    with caplog.at_level(logging.WARNING, logger="collector.ble.runner"):
        out, _fake = run(MyoNamedCrampWatch, script, profile="crampwatch")
    assert f"no {crampwatch.PROFILE.title} service" in caplog.text
    assert out.frames == []
