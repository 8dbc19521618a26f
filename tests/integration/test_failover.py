"""Scale-out and failover, counted from outside: ``cramp-detector serve`` processes, mosquitto and influxd.

The shard is the unit that moves (docs/scaling.md): its MQTT session ``<client id>-s<k>``, its state file
``detector-<client id>-s<k>of<shards>.db`` (journal, stream checkpoints, queued points) and that file's
lock. Whoever holds the lock serves the shard; the OS releases it when the process dies, even by SIGKILL,
and a process started with ``--standby-for`` takes the shard over: lock, checkpoint, journal, then session.

The reference is offline detection of the same frames by the same code (:class:`DeviceStreams`), and live
equals it bit for bit, so every comparison here is exact.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crampwatch import wire
from crampwatch.frames import Frame
from crampwatch.mqtt import connect, make_client
from crampwatch.simulate import simulate
from crampwatch.topics import StreamTopic, device_prefix, shard_of
from detector.config import DetectorSettings
from detector.model import Model, load_model
from detector.service import DetectorService
from detector.stream import DeviceStreams
from tests.integration.test_durability import Detector
from tests.servers import InfluxTestDatabase, MosquittoServer, find_binary

pytestmark = pytest.mark.integration

PREFIX = "cramp/v1"
SHARDS = 4
DEVICE = "d1"
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
FRAME_S = 2.0  # long frames: few broker round trips, so tens of patients publish in seconds
#: Stored events as compared: (patient, type, onset in ms, duration).
Stored = tuple[str, str, int, float]


@dataclass(frozen=True)
class Night:
    frames: list[Frame]
    events: list[Stored]
    summaries: int


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def reference(model: Model, patient: str, seed: int, seconds: float) -> Night:
    """A simulated night's frames and what offline detection of exactly those frames finds."""
    frames = list(simulate(seconds, seed=seed, event_density=6.0).frames(FRAME_S, start_ns=START_NS))
    streams = DeviceStreams(model, patient, DEVICE)  # as the service makes them
    events: list[Stored] = []
    summaries = 0
    for frame in frames:
        out = streams.on_frame(frame)
        events += [(patient, e.type, e.onset_ns // 10**6, float(e.duration_s)) for e in out.events]
        summaries += len(out.summaries)
    return Night(frames, events, summaries)


class Publisher:
    """A collector stand-in for many patients: QoS 1, sharded topics, every frame PUBACKed before returning."""

    def __init__(self, url: str) -> None:
        self.client = make_client(url, f"pub-{uuid.uuid4().hex[:8]}")
        connect(self.client)

    def publish(self, nights: dict[str, Night], from_s: float = 0.0, to_s: float = float("inf")) -> None:
        infos = []
        for patient, night in nights.items():
            at = device_prefix(PREFIX, patient, SHARDS)
            for f in night.frames:
                if from_s <= (f.t0_ns - START_NS) / 1e9 < to_s:
                    topic = StreamTopic(patient, DEVICE, f.kind).render(at)
                    infos.append(self.client.publish(topic, wire.encode(f), qos=1))
        for info in infos:
            info.wait_for_publish(120)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.url)
    yield pub
    pub.close()


@pytest.fixture(autouse=True)
def _no_detector_left() -> Iterator[None]:
    """A failed test must not leave a detector running."""
    yield
    Detector.kill_leftovers()


def serve_args(broker: MosquittoServer, bucket: str, influx_url: str, tmp: Path, client_id: str) -> list[str]:
    return [
        "--mqtt-url", broker.url,
        "--client-id", client_id,
        "--shards", str(SHARDS),
        "--influx-url", influx_url,
        "--influx-token", "x",
        "--influx-bucket", bucket,
        "--state-dir", str(tmp / "state"),  # shared by the processes of a deployment: the shard locks
        "--dead-letter-file", str(tmp / f"dead-letter-{client_id}.jsonl"),
        "--events-file", str(tmp / "unused.jsonl"),
        "--publish-events", "false",
        "--standby-poll-s", "0.5",
    ]  # fmt: skip


def stored_events(db: InfluxTestDatabase) -> list[Stored]:
    """Final events in InfluxDB (open announcements carry no duration_s), per patient, in time order."""
    rows = db.query('SELECT duration_s, "type" FROM cramp_events WHERE duration_s >= 0 GROUP BY patient')
    return sorted((str(r["patient"]), str(r["type"]), int(r["time"]), float(r["duration_s"])) for r in rows)


def summaries_by_patient(db: InfluxTestDatabase) -> dict[str, int]:
    rows = db.query("SELECT count(emg_rms_uv) FROM cramp_summary GROUP BY patient")
    return {str(r["patient"]): int(r["count"]) for r in rows}


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition``; generous, since tens of nights share two cores with other work (no timed assertion)."""
    deadline = time.monotonic() + 600
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def finished(*detectors: Detector) -> int:
    return sum(d.log.count("end of stream; detection finished") for d in detectors)


def streams_in(detector: Detector) -> set[str]:
    return set(re.findall(r"new stream from patient (\S+) device", detector.log))


def test_two_processes_split_the_patients_and_store_what_one_process_stores(
    model: Model, mosquitto: MosquittoServer, influx_db: InfluxTestDatabase, publisher: Publisher, tmp_path: Path
) -> None:
    """20 patients through one deployment of 1 process and, from the same frames, one of 2 processes.

    Both deployments subscribe to the same shard topics under their own client ids (their own sessions), so
    one publication feeds both; each writes its own InfluxDB database.
    """
    patients = [f"p{i:02d}" for i in range(20)]
    nights = {p: reference(model, p, seed=300 + i % 6, seconds=60.0) for i, p in enumerate(patients)}
    expected = sorted(e for night in nights.values() for e in night.events)
    assert len(expected) >= 12, "the test nights should hold events"
    two_db = InfluxTestDatabase(name=influx_db.name + "_two", server=influx_db.server, adapter=influx_db.adapter)
    influx_db.server.create_database(two_db.name)
    try:
        log = tmp_path / "detector"
        one = Detector(
            Path(f"{log}-one.log"), serve_args(mosquitto, influx_db.bucket, influx_db.v2_url, tmp_path, "one")
        )
        two = serve_args(mosquitto, two_db.bucket, two_db.v2_url, tmp_path, "two")
        a = Detector(Path(f"{log}-a.log"), [*two, "--own-shards", "0-1"])
        b = Detector(Path(f"{log}-b.log"), [*two, "--own-shards", "2-3"])
        for d in (one, a, b):
            d.wait_for_log("taking frames")
        publisher.publish(nights)
        wait_until(lambda: finished(one) == len(patients) and finished(a, b) == len(patients), "every stream's end")
        for d in (one, a, b):
            assert d.terminate() == 0

        # Each patient went to exactly one of the two processes: the one owning its shard.
        assert streams_in(a) == {p for p in patients if shard_of(p, SHARDS) < 2}
        assert streams_in(b) == {p for p in patients if shard_of(p, SHARDS) >= 2}
        assert streams_in(a) and streams_in(b)
        # The same events and summaries from 2 processes, from 1, and offline.
        assert stored_events(two_db) == stored_events(influx_db) == expected
        summaries = {p: night.summaries for p, night in nights.items()}
        assert summaries_by_patient(two_db) == summaries_by_patient(influx_db) == summaries
    finally:
        influx_db.server.drop_database(two_db.name)
    assert not list(tmp_path.glob("dead-letter-*.jsonl"))


def test_a_killed_process_shards_move_to_its_standby_with_no_event_lost_or_duplicated(
    model: Model, mosquitto: MosquittoServer, influx_db: InfluxTestDatabase, publisher: Publisher, tmp_path: Path
) -> None:
    """SIGKILL process a mid-cramp; b (standing by for all shards) takes a's shards over, state and session.

    In InfluxDB the union is the undisturbed result, exactly: every event once, the cramp that was open at
    the kill one event with its true onset and offset, and every summary once. Then a comes back: it waits
    while b serves its shards, and takes them when b stops.
    """
    patients = [f"p{i:02d}" for i in range(8)]
    # Seed 11 (as test_durability): a spasm at 2.75-10.75 s, then a cramp from about 34 s to 93 s.
    nights = {p: reference(model, p, seed=11, seconds=120.0) for p in patients}
    kill_s = 80.0
    cramps = [e for e in nights[patients[0]].events if e[1] == "cramp"]
    assert cramps and cramps[0][2] < (START_NS // 10**6 + kill_s * 1000) < cramps[0][2] + cramps[0][3] * 1000
    a_patients = {p for p in patients if shard_of(p, SHARDS) < 2}
    assert a_patients and a_patients != set(patients)

    args = [*serve_args(mosquitto, influx_db.bucket, influx_db.v2_url, tmp_path, "det"), "--checkpoint-s", "2"]
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    # a first: a standby that starts while another process is still starting could take that one's shards
    # (a lock is free then too); docs/scaling.md says how the two looks make that unlikely, not impossible.
    a = Detector(a_log, [*args, "--own-shards", "0-1"])
    a.wait_for_log("taking frames")
    b = Detector(b_log, [*args, "--own-shards", "2-3", "--standby-for", "all"])
    b.wait_for_log("taking frames")
    assert "serving shard 0 of 4" in a.log and "serving shard 2 of 4" in b.log
    publisher.publish(nights, 0, kill_s)

    def a_is_mid_cramp() -> bool:
        done = summaries_by_patient(influx_db)
        return all(done.get(p, 0) >= kill_s - 5 for p in a_patients)

    wait_until(a_is_mid_cramp, "process a at 75 s of its patients' nights")
    a.kill()  # SIGKILL, mid-cramp: the cramp is open in a's streams, some frames only in its journal
    assert {e[1] for e in stored_events(influx_db) if e[0] in a_patients} == {"spasm"}

    publisher.publish(nights, kill_s)  # the rest of every night; the broker keeps a's shards' frames
    b.wait_for_log("taking them over")
    wait_until(lambda: finished(b) == len(patients), "b finishing every patient's night")
    moved = [line for line in b.log.splitlines() if "taken over from a process that is gone" in line]
    assert len(moved) == 2 and "serving shard 0 of 4" in moved[0] and "serving shard 1 of 4" in moved[1], b.log
    # a's streams came with its shards, from their checkpoints and journals: how much from which depends on
    # whether a checkpointed before the kill (every 2 s of wall time; an idle machine publishes the 80 s
    # before the first one). A stream started afresh at its next frame would cut the open cramp in two: the
    # comparison below would fail.
    resumed = re.findall(
        r"resuming (\d+) stream\(s\) from the checkpoint in \S+-s[01]of4.db and replaying (\d+)", b.log
    )
    assert len(resumed) == 2 and sum(int(streams) + int(frames) for streams, frames in resumed) >= 1, b.log

    # "end of stream" is logged before the round's write: wait for the last summaries, written with the events
    # of their round (events first), then compare.
    summaries = {p: night.summaries for p, night in nights.items()}
    wait_until(lambda: summaries_by_patient(influx_db) == summaries, "every summary in InfluxDB")
    expected = sorted(e for night in nights.values() for e in night.events)
    assert stored_events(influx_db) == expected

    # a comes back while b serves its shards: it waits; when b stops, a takes them (and b's, standing by).
    back = Detector(a_log, [*args, "--own-shards", "0-1", "--standby-for", "all"])
    back.wait_for_log("taking frames")
    assert "shard(s) 0-1 of 4 are served by another process" in back.log
    assert b.terminate() == 0
    back.wait_for_log("serving shard 0 of 4 (one of its own shards, free again")
    back.wait_for_log("serving shard 3 of 4 (taken over from a process that is gone")
    assert back.terminate() == 0
    assert stored_events(influx_db) == expected
    assert not list(tmp_path.glob("dead-letter-*.jsonl"))


def test_shard_accounts_carry_each_shards_session_where_the_account_is_the_client_id(
    model: Model, tmp_path: Path
) -> None:
    """With ``use_username_as_clientid`` (the deployed broker) a shard's session is an account: det-s<k>.

    The ACL is the one docs/security.md gives for a sharded deployment: each shard account reads only its
    shard, each process publishes under an account of its own. a serves shards 0-1 and stops; frames for
    them are kept in the sessions of det-s0 and det-s1, and b, logging in as those accounts, gets them.
    """
    broker = MosquittoServer(tmp_path / "broker")
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.touch()
    tool = shutil.which("mosquitto_passwd") or find_binary("mosquitto_passwd")
    accounts = ["pub", "det-a", "det-b", *(f"det-s{k}" for k in range(SHARDS))]
    for user in accounts:
        subprocess.run([tool, str(passwd), user], input="pw\npw\n", text=True, check=True, capture_output=True)
    rules = ["user pub", f"topic write {PREFIX}/#"]
    for user in ("det-a", "det-b"):
        rules += [f"user {user}", f"topic write {PREFIX}/+/events", f"topic write {PREFIX}/dead-letter"]
    for k in range(SHARDS):
        rules += [f"user det-s{k}", *(f"topic read {PREFIX}/s{k}/+/+/{s}" for s in ("emg", "acc", "status"))]
    acl.write_text("\n".join(rules) + "\n")
    conf = broker.conf_path.read_text().replace(
        "allow_anonymous true",
        f"allow_anonymous false\nuse_username_as_clientid true\npassword_file {passwd}\nacl_file {acl}",
    )
    broker.conf_path.write_text(conf)
    broker.start()
    try:
        url = f"mqtt://{{}}:pw@{broker.host}:{broker.port}"
        patients = [f"p{i:02d}" for i in range(12)]
        a_patients = [p for p in patients if shard_of(p, SHARDS) < 2]
        before, after = a_patients[: len(a_patients) // 2], a_patients[len(a_patients) // 2 :]
        nights = {p: reference(model, p, seed=41 + i % 4, seconds=60.0) for i, p in enumerate(a_patients)}

        def service(name: str, own: str) -> DetectorService:
            settings = DetectorSettings(
                mqtt_url=url.format(f"det-{name}"),
                client_id="det",
                shards=SHARDS,
                own_shards=own,
                shard_accounts=True,
                publish_events=False,
                events_file=tmp_path / f"events-{name}.jsonl",
                dead_letter_file=tmp_path / f"dead-{name}.jsonl",
                state_dir=tmp_path / "state",
            )
            return DetectorService(settings, model, heartbeat_s=3600)

        publisher = Publisher(url.format("pub"))
        a, b = service("a", "0-1"), service("b", "2-3")
        workers = {"a": a.start(), "b": b.start()}
        try:
            publisher.publish({p: nights[p] for p in before})
            assert a.wait_finished({(p, DEVICE) for p in before}, timeout_s=300)
            a.stop()
            workers["a"].join(10)
            a.close()  # the sessions of det-s0 and det-s1 stay on the broker
            publisher.publish({p: nights[p] for p in after})
            assert b.take_shards({0, 1}) == {0, 1}
            assert b.wait_finished({(p, DEVICE) for p in after}, timeout_s=300)
        finally:
            publisher.close()
            b.stop()
            workers["b"].join(10)
            b.close()
        for service_, mine in ((a, before), (b, after)):
            got = sorted((e.patient, e.type, e.onset_ns // 10**6, float(e.duration_s)) for e in service_.events_log)
            assert got == sorted(e for p in mine for e in nights[p].events)
        assert b.stats.rejected_frames == 0 and b.stats.internal_errors == 0
    finally:
        broker.kill()
