"""One short simulated night written through the live path, shared by the dashboard, alert and report tests.

cramp-collector simulate (a real subprocess) -> mosquitto -> DetectorService -> influxdb-client -> write
adapter -> influxd 1.6.7, plus collector status messages on the status topics and a sensor that goes
silent mid-recording. Session-scoped: it costs about half a minute, once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.sources import SimulatedSource
from crampwatch import wire
from crampwatch.simulate import Night
from crampwatch.topics import StreamTopic, status_topic
from detector.config import DetectorSettings
from detector.model import load_model
from detector.service import DetectorService
from detector.sinks.influx import night_of
from tests.servers import InfluxServer, InfluxTestDatabase, InfluxV2WriteAdapter, MosquittoServer

PREFIX = "cramp/v1"
PATIENT, DEVICE = "p1", "sim"
SILENT = ("p9", "quiet")  # sends 10 s of data, then nothing, without ending its stream
LOW_BATTERY = ("p2", "old")  # only a collector status, battery 15 %
SEED, DENSITY = 72, "6"  # 600 s holding a cramp, a spasm and a PLM series, all detected (by the shipped model)
DURATION_S = 600.0


@dataclass(frozen=True)
class LiveNight:
    db: InfluxTestDatabase
    start_ns: int  # device time of the first sample
    end_ns: int  # wall clock when the detector had finished
    truth: Path
    events: list[Any]  # detector.events.Event, as the service logged them

    @property
    def night(self) -> str:
        return night_of(self.start_ns)

    def query(self, influxql: str) -> list[dict[str, Any]]:
        if not self.db.server.running:  # an earlier test killed the shared influxd; the data is on disk
            self.db.server.start()
        return self.db.query(influxql)


def _status(battery: int, *, link: str = "streaming") -> bytes:
    """A collector status message in the shape collector/telemetry.py publishes."""
    body = {
        "collector": "online",
        "link": link,
        "message": "streaming",
        "profile": "simulated",
        "battery_pct": battery,
        "rssi_dbm": -61,
        "connections": 1,
        "disconnects": 0,
        "samples": {"emg": 1000},
        "coverage_pct_by_hour": {"2026-01-01T00Z": 99.5},
        "device_lost_samples": {"emg": 12, "acc": 0},
        "queue_drops": 0,
        "spool_frames": 3,
        "last_data_age_s": 0.2,
        "updated": "2026-01-01T00:00:00Z",
    }
    return json.dumps(body).encode()


@pytest.fixture(scope="session")
def live_night(influxdb: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNight]:
    tmp = tmp_path_factory.mktemp("live-night")
    if not influxdb.running:
        influxdb.start()
    name = f"live_night_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(name)
    broker = MosquittoServer(tmp / "mosquitto")
    broker.start()
    adapter = InfluxV2WriteAdapter(influxdb.url)
    db = InfluxTestDatabase(name=name, server=influxdb, adapter=adapter)
    settings = DetectorSettings(
        mqtt_url=broker.url,
        client_id=f"det-live-{name[-8:]}",
        influx_url=adapter.url,
        influx_token="x",
        influx_bucket=db.bucket,
        events_file=tmp / "events.jsonl",
    )
    service = DetectorService(settings, load_model(), heartbeat_s=1.0)
    worker = service.start()
    side = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    side.connect("127.0.0.1", broker.port)
    side.loop_start()
    start_ns = time.time_ns() - int((DURATION_S + 120) * 1e9)
    truth = tmp / "truth.csv"
    try:
        for (patient, device), battery in (((PATIENT, DEVICE), 81), (LOW_BATTERY, 15)):
            side.publish(status_topic(PREFIX, patient, device), _status(battery), qos=1).wait_for_publish(5)
        # The silent sensor: its first 10 s of frames, no end of stream.
        quiet = SimulatedSource(Night(60.0, 1), start_ns=start_ns)
        for frame in quiet.frames():
            if frame.t0_ns - start_ns >= 10e9:
                break
            topic = StreamTopic(SILENT[0], SILENT[1], frame.kind).render(PREFIX)
            side.publish(topic, wire.encode(frame), qos=1).wait_for_publish(5)
        cmd = [sys.executable, "-m", "collector", "simulate", "--duration", str(DURATION_S), "--speed", "max"]
        cmd += ["--seed", str(SEED), "--density", DENSITY, "--truth", str(truth), "--mqtt-url", broker.url]
        cmd += ["--patient", PATIENT, "--device", DEVICE, "--start-ns", str(start_ns), "--no-progress"]
        subprocess.run(cmd, check=True, timeout=300)
        assert service.wait_finished({(PATIENT, DEVICE)}, timeout_s=300), "the detector did not finish the night"
        side.publish(status_topic(PREFIX, PATIENT, DEVICE), _status(79), qos=1).wait_for_publish(5)
        time.sleep(3.5)  # a few more heartbeats: the quiet sensor is now silent
    finally:
        side.loop_stop()
        side.disconnect()
        service.stop()
        worker.join(10)
        service.close()
        broker.kill()
    yield LiveNight(db=db, start_ns=start_ns, end_ns=time.time_ns(), truth=truth, events=list(service.events_log))
    adapter.stop()
    if influxdb.running:
        influxdb.drop_database(name)
