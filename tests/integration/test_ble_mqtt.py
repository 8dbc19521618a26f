"""BLE wearable -> runner -> spooled publisher -> real mosquitto -> the detector's stream logic.

One virtual sensor (bumble, tests/ble_fakes.py) streams through the whole collector into a real broker;
a persistent-session subscriber hands what arrives to ``detector.stream.DeviceStreams``, which must
accept the units, see no duplicates, and see exactly the one gap the forced link drop caused. The
retained status topic and the last will are checked on the same broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.ble.profile import get_profile
from collector.ble.runner import Backoff, BleRunner, LinkState
from collector.publisher import FramePublisher
from collector.spool import Spool
from collector.telemetry import StatusReporter
from crampwatch import wire
from crampwatch.frames import Frame, StreamKind
from crampwatch.mqtt import connect, make_client
from crampwatch.topics import StreamTopic, status_topic
from detector.stream import DeviceStreams
from tests.ble_backend import VirtualRadio
from tests.ble_fakes import FakeCrampWatchSensor
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

PREFIX, PATIENT, DEVICE = "cramp/v1", "p7", "leg"
REPO = Path(__file__).resolve().parents[2]


class Listener:
    """Persistent-session subscriber to one device's data and status topics."""

    def __init__(self, url: str, client_id: str = "test-listener") -> None:
        self.frames: list[Frame] = []
        self.status: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.client = make_client(url, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        connect(self.client)
        time.sleep(0.3)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe(f"{PREFIX}/{PATIENT}/{DEVICE}/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            if msg.topic.endswith("/status"):
                self.status.append(json.loads(msg.payload))
            elif StreamTopic.parse(msg.topic, PREFIX) is not None:
                self.frames.append(wire.decode(bytes(msg.payload)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def listener(mosquitto: MosquittoServer) -> Iterator[Listener]:
    sub = Listener(mosquitto.url)
    yield sub
    sub.close()


@pytest.fixture(autouse=True)
def _quiet_bumble() -> None:
    logging.getLogger("bumble").setLevel(logging.WARNING)


def test_sensor_frames_reach_the_broker_and_the_detector_sees_one_gap_per_outage(
    mosquitto: MosquittoServer, listener: Listener, tmp_path: Path
) -> None:
    client = make_client(mosquitto.url, "test-ble-collector")
    with Spool(tmp_path / "spool.db") as spool:
        publisher = FramePublisher(client, PREFIX, PATIENT, DEVICE, spool=spool, window=100)
        connect(client)
        profile = get_profile("crampwatch")

        async def main() -> StatusReporter:
            radio = VirtualRadio()
            await radio.start()
            fake = FakeCrampWatchSensor(radio)
            await fake.start()
            runner = BleRunner(profile, publisher, backend=radio.backend(), backoff=Backoff(0.05, 0.3))
            status = StatusReporter(publisher, profile.name, runner.stats, {s.kind: s.rate_hz for s in profile.streams})
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while runner.stats.frames.get(StreamKind.EMG, 0) < 4:
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
            status.publish()
            await fake.drop()
            while fake.connections < 2 or runner.stats.state is not LinkState.STREAMING:
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
            before = runner.stats.frames[StreamKind.EMG]
            while runner.stats.frames[StreamKind.EMG] < before + 4:
                assert loop.time() < deadline
                await asyncio.sleep(0.02)
            stop.set()
            await task
            status.publish()
            return status

        status = asyncio.run(main())
        publisher.flush(timeout_s=20)
        published = publisher.stats.published
        publisher.close()
    client.loop_stop()
    client.disconnect()

    deadline = time.monotonic() + 10
    while len(listener.frames) < published and time.monotonic() < deadline:
        time.sleep(0.05)
    with listener.lock:
        frames = list(listener.frames)
        statuses = list(listener.status)
    assert len(frames) == published
    streams = DeviceStreams(None, PATIENT, DEVICE, expect_acc=True)
    for frame in frames:
        streams.on_frame(frame)  # raises StreamError on unusable units or shapes
    emg = streams.streams[StreamKind.EMG].stats
    acc = streams.streams[StreamKind.ACC].stats
    assert (emg.duplicates, emg.gaps, acc.duplicates, acc.gaps) == (0, 1, 0, 1)
    assert emg.lost_samples > 0  # the outage, in samples, from the frames' times
    assert emg.frames == sum(f.kind is StreamKind.EMG for f in frames)

    assert statuses, "no status message"
    last = statuses[-1]
    assert last["collector"] == "online" and last["profile"] == "crampwatch"
    assert last["connections"] == 2 and last["disconnects"] == 2
    assert last["battery_pct"] == 87
    assert status.snapshot()["samples"]["emg"] > 0
    coverage = last["coverage_pct_by_hour"]
    assert isinstance(coverage, dict) and coverage


_WILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from collector.ble.runner import RunnerStats
    from crampwatch.mqtt import connect, make_client
    from collector.publisher import FramePublisher
    from collector.telemetry import StatusReporter
    from crampwatch.frames import StreamKind

    client = make_client(sys.argv[1], "test-will")
    publisher = FramePublisher(client, "cramp/v1", "p7", "leg")
    status = StatusReporter(publisher, "ganglion", RunnerStats(), {StreamKind.EMG: 200.0})
    status.set_last_will(client)
    connect(client)
    status.publish()
    publisher.flush(10)
    print("up", flush=True)
    time.sleep(60)
    """
)


def test_the_last_will_marks_a_killed_collector_offline(mosquitto: MosquittoServer, listener: Listener) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WILL_SCRIPT, mosquitto.url], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    deadline = time.monotonic() + 10
    while not listener.status and time.monotonic() < deadline:  # its "online" status has arrived
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with listener.lock:
            states = [s["collector"] for s in listener.status]
        if states[-1:] == ["offline"]:
            break
        time.sleep(0.05)
    assert states[0] == "online" and states[-1] == "offline"
    # Retained: a dashboard connecting later still sees it.
    late = Listener(mosquitto.url, "test-dashboard")
    try:
        time.sleep(0.3)
        assert late.status and late.status[-1]["collector"] == "offline"
        assert status_topic(PREFIX, PATIENT, DEVICE).endswith("/status")
    finally:
        late.close()
