"""Scale-out: detector processes split the patients by shard, and together find exactly what one finds.

Topic sharding (crampwatch.topics): a patient's frames go to ``<prefix>/s<k>/...`` with k a stable hash
of its id, and each detector subscribes to the shards it owns. These tests run a real mosquitto and two
detector services (two MQTT sessions, as two processes would have) owning half of the shards each.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from crampwatch import wire
from crampwatch.recording import Recording
from crampwatch.simulate import simulate
from crampwatch.topics import StreamTopic, device_prefix, shard_of
from detector.config import DetectorSettings
from detector.events import Event
from detector.model import Model, load_model
from detector.offline import detect_recording
from detector.service import DetectorService
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

PREFIX = "cramp/v1"
SHARDS = 4
PATIENTS = 20
NIGHTS = (41, 42, 43, 44)  # seeds; patient i replays night i % 4 under its own id
NIGHT_S = 120.0
START_NS = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def nights() -> dict[int, Recording]:
    return {seed: simulate(NIGHT_S, seed=seed, event_density=5.0) for seed in NIGHTS}


def _key(e: Event) -> tuple[object, ...]:
    return (e.type, e.onset_s, e.offset_s, e.confidence, e.peak_uv, e.precursor_s, e.interrupted_s)


def _service(tmp: Path, broker: MosquittoServer, model: Model, name: str, own: str) -> DetectorService:
    settings = DetectorSettings(
        mqtt_url=broker.url,
        client_id="det",  # one deployment: shard k's session is det-s<k> in whichever process serves it
        shards=SHARDS,
        own_shards=own,
        publish_events=False,
        events_file=tmp / f"events-{name}.jsonl",
        dead_letter_file=tmp / f"dead-{name}.jsonl",
        state_dir=tmp / "state",  # shared: a shard's state moves with its lock
    )
    return DetectorService(settings, model, heartbeat_s=3600)


@pytest.fixture
def side(mosquitto: MosquittoServer) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def test_two_processes_split_the_patients_and_find_what_one_finds(
    tmp_path: Path, mosquitto: MosquittoServer, side: mqtt.Client, model: Model, nights: dict[int, Recording]
) -> None:
    patients = [f"p{i:02d}" for i in range(PATIENTS)]
    halves = {"a": "0-1", "b": "2-3"}
    confirms: list[str] = []  # topics of the detectors' confirmations
    side.on_message = lambda _c, _u, msg: confirms.append(msg.topic)
    side.subscribe(f"{PREFIX}/+/+/+/confirm", qos=1)
    services = {name: _service(tmp_path, mosquitto, model, name, own) for name, own in halves.items()}
    workers = [s.start() for s in services.values()]
    try:
        # The shards of 20 ids are not all equal, but both halves must get patients for this to test anything.
        owner = {p: "a" if shard_of(p, SHARDS) < 2 else "b" for p in patients}
        assert set(owner.values()) == {"a", "b"}
        _publish(side, nights, patients)
        # One patient from the real collector, with the same shard count, in detector confirmation: it
        # finishes only once the process owning its shard has confirmed every frame.
        cmd = [sys.executable, "-m", "collector", "simulate", "--duration", "60", "--speed", "max", "--seed", "5"]
        cmd += ["--mqtt-url", mosquitto.url, "--patient", "p-cli", "--device", "d1", "--shards", str(SHARDS)]
        cmd += ["--confirm", "detector"]
        subprocess.run([*cmd, "--no-progress"], check=True, timeout=300)
        owner["p-cli"] = "a" if shard_of("p-cli", SHARDS) < 2 else "b"
        for name, service in services.items():
            mine = {(p, "d1") for p, o in owner.items() if o == name}
            assert service.wait_finished(mine, timeout_s=600), f"process {name} did not finish its patients"
    finally:
        for service in services.values():
            service.stop()
        for worker in workers:
            worker.join(10)
        for service in services.values():
            service.close()
    # Each patient's streams went to exactly one process: the one owning its shard. Its confirmations came
    # from that process too, on the confirm topic under its shard, where its collector listens.
    for name, service in services.items():
        assert {p for p, _ in service.stats.finished_devices} == {p for p, o in owner.items() if o == name}
        assert {p for p, _ in service.confirmed_devices} == {p for p, o in owner.items() if o == name}
        assert service.stats.rejected_frames == 0 and service.stats.internal_errors == 0
    assert (
        confirms
        and {topic for topic in confirms if topic.split("/")[2] != f"s{shard_of(topic.split('/')[3], SHARDS)}"} == set()
    )
    # Together they find, per patient, exactly what detection of that patient's night alone finds.
    found: dict[str, list[tuple[object, ...]]] = {}
    for service in services.values():
        for e in service.events_log:
            found.setdefault(e.patient, []).append(_key(e))
    expected = {seed: [_key(e) for e in detect_recording(nights[seed], model)] for seed in NIGHTS}
    assert sum(len(v) for v in expected.values()) >= 4
    for i, patient in enumerate(patients):
        assert found.get(patient, []) == expected[NIGHTS[i % len(NIGHTS)]], patient


def _publish(side: mqtt.Client, nights: dict[int, Recording], patients: list[str]) -> None:
    sent = []
    for patient in patients:
        seed = NIGHTS[int(patient[1:]) % len(NIGHTS)]
        for frame in nights[seed].frames(2.0, start_ns=START_NS):
            topic = StreamTopic(patient, "d1", frame.kind).render(device_prefix(PREFIX, patient, SHARDS))
            sent.append(side.publish(topic, wire.encode(frame), qos=1))
    for info in sent:
        info.wait_for_publish(60)


def test_a_stopped_process_shards_move_to_another_with_the_frames_sent_meanwhile(
    tmp_path: Path, mosquitto: MosquittoServer, side: mqtt.Client, model: Model, nights: dict[int, Recording]
) -> None:
    """Process a stops; b takes over its shards and gets, from their sessions, every frame sent meanwhile.

    Patients a had finished, and patients whose nights were all sent after a stopped, are exact. (A stream
    half way through when its process dies continues from the shard's state file: test_failover.py.)
    """
    patients = [f"p{i:02d}" for i in range(12)]
    a_patients = [p for p in patients if shard_of(p, SHARDS) < 2]
    assert len(a_patients) >= 2
    before, after = a_patients[: len(a_patients) // 2], a_patients[len(a_patients) // 2 :]
    a, b = _service(tmp_path, mosquitto, model, "a", "0-1"), _service(tmp_path, mosquitto, model, "b", "2-3")
    workers = {"a": a.start(), "b": b.start()}
    try:
        _publish(side, nights, before)
        assert a.wait_finished({(p, "d1") for p in before}, timeout_s=600)
        a.stop()
        workers["a"].join(10)
        a.close()  # its shard sessions stay on the broker
        _publish(side, nights, after)  # nobody serves shards 0-1 now: the broker keeps these frames
        b.take_shards({0, 1})
        assert b.wait_finished({(p, "d1") for p in after}, timeout_s=600)
    finally:
        b.stop()
        workers["b"].join(10)
        b.close()
    assert {p for p, _ in a.stats.finished_devices} == set(before)
    assert {p for p, _ in b.stats.finished_devices} == set(after)
    assert b.stats.rejected_frames == 0 and b.stats.internal_errors == 0
    expected = {seed: [_key(e) for e in detect_recording(nights[seed], model)] for seed in NIGHTS}
    for service, mine in ((a, before), (b, after)):
        for patient in mine:
            got = [_key(e) for e in service.events_log if e.patient == patient]
            assert got == expected[NIGHTS[int(patient[1:]) % len(NIGHTS)]], patient


def test_a_frame_on_the_wrong_shard_is_refused(tmp_path: Path, mosquitto: MosquittoServer, model: Model) -> None:
    """A collector with another shard count would split a patient over two processes: its frames are refused."""
    service = _service(tmp_path, mosquitto, model, "all", "")
    patient = "p00"
    wrong = (shard_of(patient, SHARDS) + 1) % SHARDS
    frame = next(iter(simulate(10.0, seed=1).frames(1.0, start_ns=START_NS)))
    service.handle(StreamTopic(patient, "d1", frame.kind).render(f"{PREFIX}/s{wrong}"), wire.encode(frame))
    service.sinks.close()
    assert service.stats.rejected_frames == 1 and not service.devices
    assert f"belongs to shard {shard_of(patient, SHARDS)} of {SHARDS}" in (tmp_path / "dead-all.jsonl").read_text()
