"""The backbone, end to end on real servers.

cramp-collector simulate (a real subprocess) -> mosquitto -> DetectorService -> influxdb-client ->
write adapter -> influxd 1.6.7, then the events are read back with InfluxQL and compared with the truth.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.sources import SimulatedSource
from crampwatch.frames import StreamKind
from crampwatch.recording import Annotation, read_annotations
from crampwatch.simulate import Night
from crampwatch.topics import StreamTopic
from detector.config import DetectorSettings
from detector.model import load_model
from detector.scoring import match
from detector.service import DetectorService
from detector.stream import DeviceStreams
from tests.servers import InfluxTestDatabase, MosquittoServer

pytestmark = pytest.mark.integration

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, a fixed device clock
# A night known to hold a cramp and a flexor spasm (the "known events" of the issue). The model is not
# perfect (the 46-feature model got 19 of 20 such nights, seeds 1-20, exactly right; scores:
# detector/models/*.card.json), so this test checks the pipeline end to end on a representative night, strictly.
SEED = 9
DURATION_S = 600.0


def _simulate(url: str, truth: Path, *, patient: str, device: str, seed: int = SEED) -> None:
    cmd = [
        sys.executable,
        "-m",
        "collector",
        "simulate",
        "--duration",
        str(DURATION_S),
        "--speed",
        "max",
        "--seed",
        str(seed),
        "--density",
        "3",
        "--truth",
        str(truth),
        "--mqtt-url",
        url,
        "--patient",
        patient,
        "--device",
        device,
        "--start-ns",
        str(START_NS),
        "--no-progress",
    ]
    subprocess.run(cmd, check=True, timeout=300)


def _service(mosquitto: MosquittoServer, db: InfluxTestDatabase | None, tmp_path: Path) -> DetectorService:
    settings = DetectorSettings(
        mqtt_url=mosquitto.url,
        client_id=f"det-{tmp_path.name[-20:]}",
        influx_url=db.v2_url if db else "",
        influx_token="x",
        influx_bucket=db.bucket if db else "x",
        events_file=tmp_path / "events.jsonl",
        dead_letter_file=tmp_path / "dead-letter.jsonl",  # refused frames are dead-lettered: not into the cwd
    )
    return DetectorService(settings, load_model())


def test_simulated_night_lands_in_influxdb_matching_truth(
    mosquitto: MosquittoServer, influx_db: InfluxTestDatabase, tmp_path: Path
) -> None:
    received: list[str] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda c, u, m: received.append(m.payload.decode())
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("cramp/v1/p1/events", qos=1)
    watcher.loop_start()

    service = _service(mosquitto, influx_db, tmp_path)
    worker = service.start()
    try:
        _simulate(mosquitto.url, tmp_path / "truth.csv", patient="p1", device="sim")
        assert service.wait_finished({("p1", "sim")}, timeout_s=300), "detector did not finish the night"
    finally:
        service.stop()
        worker.join(10)
        service.close()
        watcher.loop_stop()

    truth = [a for a in read_annotations(tmp_path / "truth.csv") if a.type in ("cramp", "spasm")]
    assert {a.type for a in truth} == {"cramp", "spasm"}, "the test night should hold both event types"
    # Final events only: open (and withdrawn) points carry no duration_s; the final point overwrote its open one.
    rows = influx_db.query(
        'SELECT duration_s, confidence, peak_uv, "type", patient, device FROM cramp_events WHERE "state" = \'final\''
    )
    onsets = [(r["time"] * 1_000_000 - START_NS) / 1e9 for r in rows]  # rows come back with epoch=ms
    found = [Annotation(str(r["type"]), t, t + float(r["duration_s"])) for r, t in zip(rows, onsets, strict=True)]
    assert all(r["patient"] == "p1" and r["device"] == "sim" for r in rows)
    pairs = match(truth, found)
    assert len(pairs) == len(truth), f"truth {truth}\nfound {found}"
    assert len(found) == len(truth), f"extra events: {found}"
    for i, j in pairs:
        assert found[j].type == truth[i].type
        assert abs(found[j].onset_s - truth[i].onset_s) <= 5.0, (truth[i], found[j])
    # The same events went out on MQTT, each cramp first as "open" with the id its final message carries.
    messages = [json.loads(m) for m in received]
    final = [m for m in messages if m["type"] in ("cramp", "spasm") and m["state"] == "final"]
    assert len(final) == len(found)
    opened = [m["id"] for m in messages if m["state"] == "open"]
    assert all(m["id"] in opened for m in final if m["type"] == "cramp")
    for m in final:  # a spasm may end before it could be announced; an announcement never follows its final
        assert not [x for x in messages[messages.index(m) + 1 :] if x["id"] == m["id"]]
    # The 1 Hz summary covers the night.
    summary = influx_db.query("SELECT count(data_received) FROM cramp_summary")
    assert abs(summary[0]["count"] - DURATION_S) <= 2


def test_live_gives_the_same_events_as_offline(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    service = _service(mosquitto, None, tmp_path)
    worker = service.start()
    try:
        _simulate(mosquitto.url, tmp_path / "truth.csv", patient="p2", device="sim", seed=SEED + 1)
        assert service.wait_finished({("p2", "sim")}, timeout_s=300)
    finally:
        service.stop()
        worker.join(10)
        service.close()
    live = [(e.type, e.onset_s, e.offset_s) for e in service.events_log]
    # Offline: the same samples, as integer counts x scale, in 30 s chunks instead of 0.25 s frames.
    night = Night(DURATION_S, SEED + 1, event_density=3)
    frames = list(SimulatedSource(night, start_ns=START_NS).frames())
    streams = DeviceStreams(load_model(), "p2", "sim", expect_acc=True)
    offline = []
    for f in frames:
        offline += streams.on_frame(f).events
    assert live == [(e.type, e.onset_s, e.offset_s) for e in offline]
    assert live, "the night should contain events"


def test_malformed_frame_is_rejected_and_the_stream_goes_on(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = _service(mosquitto, None, tmp_path)
    worker = service.start()
    bad = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    bad.connect("127.0.0.1", mosquitto.port)
    bad.loop_start()
    topic = StreamTopic("p3", "sim", StreamKind.EMG).render("cramp/v1")
    try:
        with caplog.at_level(logging.WARNING, logger="detector.service"):
            bad.publish(topic, b"CW\x01garbage that is not a frame", qos=1).wait_for_publish(5)
            _simulate(mosquitto.url, tmp_path / "truth.csv", patient="p3", device="sim")
            assert service.wait_finished({("p3", "sim")}, timeout_s=300)
    finally:
        bad.loop_stop()
        service.stop()
        worker.join(10)
        service.close()
    assert service.stats.rejected_frames == 1
    assert any("rejected frame on cramp/v1/p3/sim/emg" in r.getMessage() for r in caplog.records)
    assert service.events_log, "the stream went on and produced events after the bad frame"
