"""Faults survived, counted from outside: ``cramp-detector serve`` as a real process, real mosquitto and influxd.

The reference is the same night detected offline by the same code (:class:`detector.stream.DeviceStreams`
over the same frames): live equals offline bit for bit however the samples are chunked
(test_end_to_end), so an undisturbed run has zero tolerance, and so does every test here.

Frames are published by the test itself (QoS 1, the collector's wire format), in parts, so each fault
happens at a known point of the night (mid-cramp) without any sleep: the detector's own log lines and the
points in InfluxDB say when it got there.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.sources import SimulatedSource
from crampwatch import wire
from crampwatch.frames import Frame
from crampwatch.simulate import Night
from crampwatch.topics import StreamTopic, events_topic
from detector.events import Event
from detector.model import load_model
from detector.stream import DeviceStreams
from tests.servers import InfluxTestDatabase, MosquittoServer

pytestmark = pytest.mark.integration

PREFIX = "cramp/v1"
PATIENT, DEVICE = "p7", "calf"
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
# 120 s at 200 Hz EMG: offline, a spasm at 27.75 s and a cramp from 64.25 s to 95.75 s.
SEED, DURATION_S = 12, 120.0
WAIT_S = 120.0  # generous: two cores shared with other work; no assertion is about time


@dataclass(frozen=True)
class Reference:
    frames: list[Frame]
    events: list[Event]
    summaries: int


@pytest.fixture(scope="module")
def night() -> Reference:
    frames = list(SimulatedSource(Night(DURATION_S, SEED, event_density=6), start_ns=START_NS).frames())
    streams = DeviceStreams(load_model(), PATIENT, DEVICE)  # as the service makes them
    events: list[Event] = []
    summaries = 0
    for frame in frames:
        out = streams.on_frame(frame)
        events += out.events
        summaries += len(out.summaries)
    assert [e.type for e in events] == ["spasm", "cramp"], "the test night should hold a spasm, then a cramp"
    return Reference(frames, events, summaries)


def part(frames: list[Frame], from_s: float, to_s: float) -> list[Frame]:
    return [f for f in frames if from_s <= (f.t0_ns - START_NS) / 1e9 < to_s]


class Publisher:
    """A collector stand-in: QoS 1, every frame acknowledged by the broker before publish() returns."""

    def __init__(self, broker: MosquittoServer) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, frames: list[Frame]) -> None:
        infos = [
            self.client.publish(StreamTopic(PATIENT, DEVICE, f.kind).render(PREFIX), wire.encode(f), qos=1)
            for f in frames
        ]
        for info in infos:
            info.wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class EventWatcher:
    """Every event message the detector publishes, as it arrives (QoS 1)."""

    def __init__(self, broker: MosquittoServer) -> None:
        self.messages: list[dict[str, Any]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.messages.append(json.loads(m.payload))
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(events_topic(PREFIX, PATIENT), qos=1)
        assert subscribed.wait(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Detector:
    """``cramp-detector serve`` as a child process, its log in a file."""

    def __init__(self, log_path: Path, args: list[str]) -> None:
        self.log_path = log_path
        self.offset = log_path.stat().st_size if log_path.exists() else 0  # this run's part of the log
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "detector", "serve", *args], stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def log(self) -> str:
        with self.log_path.open("rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode(errors="replace")

    def wait_for_log(self, text: str) -> None:
        wait_until(lambda: text in self.log or self.proc.poll() is not None, f"{text!r} in the detector's log")
        assert text in self.log, f"the detector exited ({self.proc.returncode}) before logging {text!r}:\n{self.log}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(WAIT_S)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT_S)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def detector_args(mosquitto: MosquittoServer, influx_db: InfluxTestDatabase, tmp_path: Path) -> list[str]:
    return [
        "--mqtt-url", mosquitto.url,
        "--client-id", f"det-{tmp_path.name[-20:]}",
        "--influx-url", influx_db.v2_url,
        "--influx-token", "x",
        "--influx-bucket", influx_db.bucket,
        "--state-dir", str(tmp_path / "state"),
        "--dead-letter-file", str(tmp_path / "dead-letter.jsonl"),
        "--events-file", str(tmp_path / "unused.jsonl"),
        "--sink-retry-s", "0.5",
        "--log-level", "DEBUG",
    ]  # fmt: skip


@pytest.fixture
def watcher(mosquitto: MosquittoServer) -> Iterator[EventWatcher]:
    watching = EventWatcher(mosquitto)
    yield watching
    watching.close()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


def summaries_stored(db: InfluxTestDatabase) -> int:
    rows = db.query("SELECT count(emg_rms_uv) FROM cramp_summary")
    return int(rows[0]["count"]) if rows else 0


def stored_events(db: InfluxTestDatabase) -> list[tuple[str, int, float]]:
    rows = db.query('SELECT duration_s, "type" FROM cramp_events')
    return [(str(r["type"]), int(r["time"]), float(r["duration_s"])) for r in rows]


def expected_events(ref: Reference) -> list[tuple[str, int, float]]:
    # The adapter's test database answers with epoch=ms; durations as stored (float of offset - onset).
    return [(e.type, e.onset_ns // 10**6, float(e.duration_s)) for e in ref.events]


def assert_same_as_undisturbed(ref: Reference, db: InfluxTestDatabase, watcher: EventWatcher) -> None:
    assert stored_events(db) == expected_events(ref)
    assert summaries_stored(db) == ref.summaries
    # On MQTT an event may come twice after a restart (re-emitted from the journal), always with the same id
    # and body, so a consumer that keeps one per id sees each event exactly once.
    by_id: dict[str, dict[str, Any]] = {}
    for message in watcher.messages:
        assert by_id.setdefault(message["id"], message) == message
    wait_until(lambda: len({m["id"] for m in watcher.messages}) >= len(ref.events), "the events on MQTT")
    assert sorted({m["id"] for m in watcher.messages}) == sorted(e.id for e in ref.events)


def test_detector_killed_mid_cramp_resumes_with_no_event_lost_or_duplicated(
    night: Reference,
    detector_args: list[str],
    influx_db: InfluxTestDatabase,
    publisher: Publisher,
    watcher: EventWatcher,
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "detector.log"
    # Run 1: the first 40 s, then a clean stop (SIGTERM): it checkpoints and acknowledges everything.
    first = Detector(log_path, detector_args)
    first.wait_for_log("taking frames")
    publisher.publish(part(night.frames, 0, 40))
    wait_until(lambda: summaries_stored(influx_db) >= 35, "35 s of summaries")
    assert first.terminate() == 0
    assert "none left queued" in first.log

    # Run 2: resumes from the checkpoint, takes 40-80 s (into the cramp, which runs to 95.75 s), and is
    # killed: the frames since the checkpoint are only in the journal.
    second = Detector(log_path, detector_args)
    second.wait_for_log("taking frames")
    assert "resuming 1 stream(s) from the checkpoint" in second.log
    publisher.publish(part(night.frames, 40, 80))
    wait_until(lambda: summaries_stored(influx_db) >= 75, "75 s of summaries")
    second.kill()
    assert [kind for kind, _, _ in stored_events(influx_db)] == ["spasm"]  # the cramp was still open

    # While it is down the rest of the night arrives; the broker keeps it for the session.
    publisher.publish(part(night.frames, 80, DURATION_S + 1))
    third = Detector(log_path, detector_args)
    third.wait_for_log("end of stream; detection finished")
    replayed = [line for line in third.log.splitlines() if "replaying" in line]
    assert replayed and "resuming 1 stream(s)" in replayed[0] and " 0 journalled" not in replayed[0], third.log
    assert third.terminate() == 0

    assert_same_as_undisturbed(night, influx_db, watcher)
    assert not (tmp_path / "dead-letter.jsonl").exists()
