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
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from collector.sources import SimulatedSource
from crampwatch import wire
from crampwatch.frames import Frame
from crampwatch.mqtt import connect, make_client
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
# 120 s: offline, a spasm at 2.75-10.75 s and a cramp from 33.75 s to 92.75 s.
SEED, DURATION_S = 11, 120.0
WAIT_S = 120.0  # generous: two cores shared with other work; no assertion is about time


@dataclass(frozen=True)
class Reference:
    frames: list[Frame]
    events: list[Event]
    summaries: int
    announcements: int  # open and cancelled events on the way


@pytest.fixture(scope="module")
def night() -> Reference:
    frames = list(SimulatedSource(Night(DURATION_S, SEED, event_density=6), start_ns=START_NS).frames())
    # As the service makes them: its final events carry the id they were announced under while open.
    streams = DeviceStreams(load_model(), PATIENT, DEVICE, open_events=True)
    events: list[Event] = []
    summaries = announcements = 0
    for frame in frames:
        out = streams.on_frame(frame)
        events += [e for e in out.events if e.state == "final"]
        announcements += sum(e.state != "final" for e in out.events)
        summaries += len(out.summaries)
    assert [e.type for e in events] == ["spasm", "cramp"], "the test night should hold a spasm, then a cramp"
    return Reference(frames, events, summaries, announcements)


def part(frames: list[Frame], from_s: float, to_s: float) -> list[Frame]:
    return [f for f in frames if from_s <= (f.t0_ns - START_NS) / 1e9 < to_s]


class Publisher:
    """A collector stand-in: QoS 1, every frame acknowledged by the broker before publish() returns."""

    def __init__(self, broker: MosquittoServer) -> None:
        self.client = make_client(broker.url, "test-publisher")
        self.client.reconnect_delay_set(1, 1)
        connect(self.client)

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
    """Every event message the detector publishes, as it arrives: a persistent QoS 1 session, so that a
    broker restart loses nothing for it either."""

    def __init__(self, broker: MosquittoServer, client_id: str) -> None:
        self.messages: list[dict[str, Any]] = []
        subscribed = threading.Event()
        self.client = make_client(broker.url, client_id)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, *_: c.subscribe(events_topic(PREFIX, PATIENT), qos=1)
        self.client.on_message = lambda _c, _u, m: self.messages.append(json.loads(m.payload))
        self.client.on_subscribe = lambda *_: subscribed.set()
        connect(self.client)
        assert subscribed.wait(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Detector:
    """``cramp-detector serve`` as a child process, its log in a file."""

    running: ClassVar[set[subprocess.Popen[bytes]]] = set()

    @classmethod
    def kill_leftovers(cls) -> None:
        """After a test (a failed one included): no detector may keep running."""
        for proc in cls.running:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT_S)
        cls.running.clear()

    def __init__(self, log_path: Path, args: list[str]) -> None:
        self.log_path = log_path
        self.offset = log_path.stat().st_size if log_path.exists() else 0  # this run's part of the log
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "detector", "serve", *args], stdout=out, stderr=subprocess.STDOUT
            )
        Detector.running.add(self.proc)

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
    return serve_args(mosquitto, influx_db, tmp_path)


def serve_args(broker: MosquittoServer, influx_db: InfluxTestDatabase, tmp_path: Path) -> list[str]:
    """``cramp-detector serve`` against ``broker`` and the test's InfluxDB, its state in ``tmp_path``."""
    return [
        "--mqtt-url", broker.url,
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


@pytest.fixture(autouse=True)
def _no_detector_left() -> Iterator[None]:
    """A failed test must not leave a detector running."""
    yield
    Detector.kill_leftovers()


@pytest.fixture
def watcher(mosquitto: MosquittoServer, tmp_path: Path) -> Iterator[EventWatcher]:
    watching = EventWatcher(mosquitto, f"watch-{tmp_path.name[-20:]}")
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
    rows = db.query('SELECT duration_s, "type" FROM cramp_events WHERE duration_s >= 0')
    return [(str(r["type"]), int(r["time"]), float(r["duration_s"])) for r in rows]


def expected_events(ref: Reference) -> list[tuple[str, int, float]]:
    # The adapter's test database answers with epoch=ms; durations as stored (float of offset - onset).
    return [(e.type, e.onset_ns // 10**6, float(e.duration_s)) for e in ref.events]


def assert_same_as_undisturbed(ref: Reference, db: InfluxTestDatabase, watcher: EventWatcher) -> None:
    assert stored_events(db) == expected_events(ref)
    assert summaries_stored(db) == ref.summaries

    # On MQTT an event may come twice after a restart (re-emitted from the journal), always with the same id
    # and body, so a consumer that keeps one per id sees each event exactly once.
    # Live, a cramp or spasm is also announced (state "open") under the id its final message will have.
    def final_ids() -> set[str]:
        return {m["id"] for m in watcher.messages if m.get("state", "final") == "final"}

    by_id: dict[tuple[str, str], dict[str, Any]] = {}
    for message in watcher.messages:
        if message.get("state") == "open":
            continue  # an open event's offset is "so far": a re-announcement after a restart may differ
        assert by_id.setdefault((message["id"], message.get("state", "final")), message) == message
    wait_until(lambda: len(final_ids()) >= len(ref.events), "the events on MQTT")
    assert sorted(final_ids()) == sorted(e.event_id for e in ref.events)


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

    # Run 2: resumes from the checkpoint, takes 40-80 s (into the cramp, which runs to 92.75 s), and is
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


def test_influxdb_down_then_back_every_point_is_written_once_from_the_durable_queue(
    night: Reference,
    detector_args: list[str],
    influx_db: InfluxTestDatabase,
    publisher: Publisher,
    watcher: EventWatcher,
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "detector.log"
    args = [*detector_args, "--checkpoint-s", "1"]
    influx_db.adapter.stop()  # connection refused, as with a database that is down
    first = Detector(log_path, args)
    first.wait_for_log("taking frames")
    assert "does not answer (GET /ping failed); serving anyway" in first.log  # said at start, then goes on
    publisher.publish(night.frames)
    first.wait_for_log("end of stream; detection finished")
    # One error line for the outage, not one per second of data (the queue's depth is in it and in heartbeats).
    errors = [line for line in first.log.splitlines() if " ERROR " in line]
    assert 1 <= len(errors) <= 3, errors
    assert first.terminate() == 0
    # Live, each cramp and spasm is also announced (state "open"): its point waits in the queue too, and the
    # final point overwrites it in InfluxDB (same series and time), so the database ends with the events.
    queued = re.search(
        rf"influxdb: stopping with (\d+) events and {night.summaries} summaries still queued in ", first.log
    )
    assert queued is not None, first.log
    points = int(queued.group(1))
    assert points == len(night.events) + night.announcements

    # Still down: the queue survives a restart, and then a crash.
    second = Detector(log_path, args)
    second.wait_for_log("taking frames")
    assert f"{points} events and {night.summaries} summaries are queued in " in second.log
    second.kill()

    # Back up. No new data arrives: the timer's retry drains the queue.
    influx_db.adapter.start()
    third = Detector(log_path, args)
    third.wait_for_log("influxdb: its retry queue is empty again")
    assert third.terminate() == 0
    # The queued points were the final events plus their open announcements, counted apart.
    written = (
        f"influxdb: {len(night.events)} events and {night.summaries} summaries written in this run, none left "
        f"queued (and {points - len(night.events)} open/cancelled announcements of live events)"
    )
    assert written in third.log

    assert_same_as_undisturbed(night, influx_db, watcher)
    assert not (tmp_path / "dead-letter.jsonl").exists()


def test_a_point_influxdb_refuses_is_dead_lettered_with_the_reason_and_counted(
    night: Reference,
    detector_args: list[str],
    influx_db: InfluxTestDatabase,
    publisher: Publisher,
    watcher: EventWatcher,
    tmp_path: Path,
) -> None:
    """A field type conflict (HTTP 400, which influxdb-client's batching writer would only log) from a real
    influxd, met when the durable queue is sent after an outage: refused, dead-lettered with the reason and
    counted, while the summaries queued with it are stored."""
    # An older writer stored duration_s as an integer in the same shard (week) as the night.
    line = f"cramp_events,patient=p0,device=d0,type=cramp duration_s=12i {START_NS - 3600 * 10**9}"
    request = urllib.request.Request(f"{influx_db.server.url}/write?db={influx_db.name}", line.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204
    log_path = tmp_path / "detector.log"
    # Final events only: an "open" announcement of the spasm would be one more queued point.
    detector_args = [*detector_args, "--open-events", "false"]
    influx_db.adapter.stop()
    first = Detector(log_path, detector_args)
    first.wait_for_log("taking frames")
    publisher.publish(part(night.frames, 0, 70))  # the spasm (2.75-10.75 s) is decided long before 70 s
    # Without announcements the spasm's id is that of its own onset (no announced onset to keep).
    spasm = replace(night.events[0], opened_onset_s=None)
    # Published on MQTT after the InfluxDB sink had its turn: the spasm is queued for InfluxDB by now.
    wait_until(lambda: spasm.event_id in {m["id"] for m in watcher.messages}, "the spasm on MQTT")
    assert first.terminate() == 0
    assert "influxdb: stopping with 1 events and " in first.log

    influx_db.adapter.start()
    second = Detector(log_path, detector_args)
    second.wait_for_log("taking frames")
    dead = tmp_path / "dead-letter.jsonl"
    wait_until(lambda: dead.exists(), "the dead letter")
    wait_until(lambda: summaries_stored(influx_db) >= 65, "the queued summaries")
    assert second.terminate() == 0

    [letter] = [json.loads(text) for text in dead.read_text().splitlines()]
    assert (letter["sink"], letter["kind"], letter["record"]["id"]) == ("influxdb", "event", spasm.event_id)
    assert 'field type conflict: input field "duration_s" on measurement "cramp_events"' in letter["reason"]
    assert "1 event(s) moved to the dead letter" in second.log
    assert "influxdb: 1 events and 0 summaries went to the dead letter during this run" in second.log
    assert [kind for kind, _, _ in stored_events(influx_db)] == ["cramp"]  # only the seeded old point


def test_broker_killed_mid_cramp_the_detector_gives_the_undisturbed_events(
    night: Reference,
    detector_args: list[str],
    influx_db: InfluxTestDatabase,
    mosquitto: MosquittoServer,
    publisher: Publisher,
    watcher: EventWatcher,
    tmp_path: Path,
) -> None:
    detector = Detector(tmp_path / "detector.log", detector_args)
    detector.wait_for_log("taking frames")
    publisher.publish(part(night.frames, 0, 80))
    wait_until(lambda: summaries_stored(influx_db) >= 75, "75 s of summaries")
    mosquitto.kill()  # SIGKILL, mid-cramp; persistence saves on every change (tests/servers.py)
    mosquitto.start()
    wait_until(publisher.client.is_connected, "the publisher back on the broker")
    publisher.publish(part(night.frames, 80, DURATION_S + 1))
    detector.wait_for_log("end of stream; detection finished")
    assert detector.terminate() == 0
    assert_same_as_undisturbed(night, influx_db, watcher)


@pytest.fixture
def lossy_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A broker without per-change save (autosave every 60 s): a SIGKILL within a minute of its start loses
    everything, the detector's session and subscription included. Detector confirmation makes that safe."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"), per_change_save=False, autosave_interval=60)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_broker_without_per_change_save_killed_mid_stream_detector_confirmation_loses_nothing(
    night: Reference,
    influx_db: InfluxTestDatabase,
    lossy_mosquitto: MosquittoServer,
    tmp_path: Path,
) -> None:
    """A real collector publisher in ``confirm="detector"`` mode and a real ``cramp-detector serve``; the
    broker is SIGKILLed while frames stream (some in flight, some queued for the detector) and restarts
    empty. The spool keeps every frame until the detector confirms it, so the stored events and every
    second of summaries equal the undisturbed run (InfluxDB points are idempotent: no duplicate either)."""
    from collector.publisher import FramePublisher
    from collector.spool import Spool

    broker = lossy_mosquitto
    args = [*serve_args(broker, influx_db, tmp_path), "--publish-events", "false"]  # events compared in InfluxDB
    detector = Detector(tmp_path / "detector.log", args)
    detector.wait_for_log("taking frames")
    client = make_client(broker.url, "test-collector")
    client.reconnect_delay_set(1, 1)
    with Spool(tmp_path / "spool.db") as spool:
        pub = FramePublisher(client, PREFIX, PATIENT, DEVICE, spool=spool, confirm="detector", probe_s=0.5)
        connect(client)
        try:
            for frame in part(night.frames, 0, 80):
                pub.publish(frame)
            wait_until(lambda: summaries_stored(influx_db) >= 30, "30 s of summaries")
            unconfirmed = spool.count
            broker.kill()  # SIGKILL mid-stream: nothing of this broker's state survives (no save yet)
            broker.start()
            for frame in part(night.frames, 80, DURATION_S + 1):
                pub.publish(frame)
            pub.flush(WAIT_S)  # the spool is empty only once the detector confirmed every frame
            detector.wait_for_log("end of stream; detection finished")
            stats = pub.stats
        finally:
            pub.close()
            client.loop_stop()
            client.disconnect()
    assert detector.terminate() == 0
    print(f"broker kill with {unconfirmed} unconfirmed frame(s) spooled; publisher {stats}")
    assert unconfirmed > 0  # the kill came mid-stream, with frames not yet confirmed
    assert stats.probes >= 2  # the first connect and the reconnect after the kill
    assert stored_events(influx_db) == expected_events(night)
    assert summaries_stored(influx_db) == night.summaries
    # No frame ever reached the detector out of order (a gap it would fill, then drop the late frames of).
    assert " lost (" not in detector.log and "new epoch" not in detector.log, detector.log[-3000:]
    assert not (tmp_path / "dead-letter.jsonl").exists()


def test_detector_killed_mid_stream_a_detector_confirm_collector_loses_nothing(
    night: Reference,
    influx_db: InfluxTestDatabase,
    lossy_mosquitto: MosquittoServer,
    tmp_path: Path,
) -> None:
    """The other end: the detector is SIGKILLed (frames journalled but not yet confirmed, confirmations lost
    with it) while a detector-confirm collector streams. After its restart the collector's spool drains
    completely (every frame confirmed) and the results equal the undisturbed run."""
    from collector.publisher import FramePublisher
    from collector.spool import Spool

    broker = lossy_mosquitto
    args = [*serve_args(broker, influx_db, tmp_path), "--publish-events", "false"]  # events compared in InfluxDB
    log_path = tmp_path / "detector.log"
    first = Detector(log_path, args)
    first.wait_for_log("taking frames")
    client = make_client(broker.url, "test-collector")
    client.reconnect_delay_set(1, 1)
    with Spool(tmp_path / "spool.db") as spool:
        # stall_s short: with no new frames after the kill, the collector probes again for the lost confirmations
        pub = FramePublisher(client, PREFIX, PATIENT, DEVICE, spool=spool, confirm="detector", probe_s=0.5, stall_s=5)
        connect(client)
        try:
            for frame in part(night.frames, 0, 80):
                pub.publish(frame)
            # Mid-stream: the probe is confirmed and a few hundred frames are out, most not yet confirmed.
            wait_until(lambda: pub.stats.confirmed >= 1 and pub.stats.sent >= 300, "300 frames sent")
            first.kill()  # SIGKILL: frames journalled or in flight, confirmations not yet sent
            unconfirmed = spool.count
            second = Detector(log_path, args)
            second.wait_for_log("taking frames")
            for frame in part(night.frames, 80, DURATION_S + 1):
                pub.publish(frame)
            pub.flush(WAIT_S)
            second.wait_for_log("end of stream; detection finished")
        finally:
            pub.close()
            client.loop_stop()
            client.disconnect()
    assert second.terminate() == 0
    assert unconfirmed > 0
    assert stored_events(influx_db) == expected_events(night)
    assert summaries_stored(influx_db) == night.summaries
    assert " lost (" not in second.log and "new epoch" not in second.log, second.log[-3000:]
