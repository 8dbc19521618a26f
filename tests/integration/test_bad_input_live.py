"""Bad input against a real broker: the service stays up, refuses with reasons, and the real night is whole.

Before the edge checks, one 10 Hz EMG frame ended the detector's worker (and ``serve`` exited 0), and one
forged frame with a far-ahead sequence number made every later real frame a "duplicate" (issue 17).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.sources import SimulatedSource
from crampwatch import wire
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.recording import Annotation, read_annotations
from crampwatch.simulate import Night
from detector.config import DetectorSettings
from detector.model import load_model
from detector.scoring import match
from detector.service import INVALID_ID_KEY, DetectorService
from tests.integration.test_end_to_end import DURATION_S, SEED, START_NS, _simulate
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_bad_frames_are_refused_and_the_real_night_is_whole(
    mosquitto: MosquittoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = DetectorSettings(
        mqtt_url=mosquitto.url,
        client_id=f"det-{tmp_path.name[-20:]}",
        events_file=tmp_path / "events.jsonl",
        dead_letter_file=tmp_path / "dead.jsonl",
    )
    service = DetectorService(settings, load_model())
    dead_on_mqtt: list[dict[str, object]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda c, u, m: dead_on_mqtt.append(json.loads(m.payload))
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("cramp/v1/dead-letter", qos=1)
    watcher.loop_start()
    bad = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    bad.connect("127.0.0.1", mosquitto.port)
    bad.loop_start()

    slow = Frame(StreamKind.EMG, 0, START_NS, 10.0, (Channel("a", "uV"),), np.ones((3, 1), dtype=np.int16))
    first_real = next(f for f in SimulatedSource(Night(DURATION_S, SEED, event_density=3), start_ns=START_NS).frames())
    assert first_real.kind is StreamKind.EMG
    forged = dataclasses.replace(first_real, seq=2**40)  # a real-looking frame, counter far ahead
    worker = service.start()
    try:
        with caplog.at_level(logging.WARNING, logger="detector"):
            for topic, frame in [
                ("cramp/v1/p4/sim/emg", slow),
                ("cramp/v1/p4/sim/emg", forged),
                ("cramp/v1/p4/sim\\/emg", first_real),  # an id that would share an InfluxDB tag with "sim"
            ]:
                bad.publish(topic, wire.encode(frame), qos=1).wait_for_publish(5)
            _simulate(mosquitto.url, tmp_path / "truth.csv", patient="p4", device="sim")
            assert service.wait_finished({("p4", "sim")}, timeout_s=300), "detector did not finish the night"
            assert worker.is_alive(), "bad input must not end the worker"
            assert _wait(lambda: len(dead_on_mqtt) >= 2)
    finally:
        bad.loop_stop()
        service.stop()
        worker.join(10)
        service.close()
        watcher.loop_stop()

    # The two refused frames: counted per device, dead-lettered on disk and on MQTT with their reasons.
    assert service.stats.rejected_frames == 2
    assert service.stats.rejected_by_device == {"p4/sim": 1, INVALID_ID_KEY: 1}
    assert service.stats.internal_errors == 0
    on_disk = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    for lines in (on_disk, dead_on_mqtt):
        assert [x["reason"] for x in lines] == [
            "EMG rate 10 Hz is outside the physical range 100-10000 Hz",
            "device id 'sim\\\\' contains '\\\\': use 1-64 letters, digits, '-', '_' or '.'",
        ]
    # The forged frame opened the device; the real stream, counting from 0, started a new epoch (logged)
    # instead of being dropped as 4,800 "duplicates". Only its first frame, of the very time the forged one
    # claimed, was taken for a duplicate.
    assert any("sequence number went back from 1099511627777" in r.getMessage() for r in caplog.records)

    # Every event of the real night was produced, at its own time.
    truth = [a for a in read_annotations(tmp_path / "truth.csv") if a.type in ("cramp", "spasm")]
    found = [
        Annotation(e.type, (e.start_ns - START_NS) / 1e9 + e.onset_s, (e.start_ns - START_NS) / 1e9 + e.offset_s)
        for e in service.events_log
        if e.type in ("cramp", "spasm")
    ]
    pairs = match(truth, found)
    assert len(pairs) == len(truth) == len(found), f"truth {truth}\nfound {found}"
    for i, j in pairs:
        assert found[j].type == truth[i].type
        assert abs(found[j].onset_s - truth[i].onset_s) <= 5.0, (truth[i], found[j])
