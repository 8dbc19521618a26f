"""Proof that the real-server fixtures behave like production: paho 2.x against mosquitto (including a
broker crash with a persistent session) and influxdb-client writing to influxd 1.6.7 through the adapter.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.servers import INSTALL_HINT, InfluxTestDatabase, MosquittoServer, find_binary

pytestmark = pytest.mark.integration

TIMEOUT_S = 10.0


class MqttPeer:
    """A connected paho 2.x MQTT v5 client whose callbacks feed events and queues that tests wait on."""

    def __init__(
        self,
        broker: MosquittoServer,
        client_id: str = "",
        *,
        clean_start: bool = True,
        session_expiry: int = 0,
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.session_present = False
        self.connect_reason: ReasonCode | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._acked: dict[int, ReasonCode] = {}
        self._acked_cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda _c, _u, _mid, _codes, _props: self._subscribed.set()
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_expiry
        self.client.connect(broker.host, broker.port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        assert self._connected.wait(TIMEOUT_S), "no CONNACK"
        assert self.connect_reason is not None
        assert not self.connect_reason.is_failure, str(self.connect_reason)

    def _on_connect(self, _c: mqtt.Client, _u: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _p: Any) -> None:
        # No asserts in callbacks: they run on paho's thread; the test thread checks connect_reason.
        self.connect_reason = reason
        self.session_present = flags.session_present
        self._connected.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._acked_cond:
            self._acked[mid] = reason
            self._acked_cond.notify_all()

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(TIMEOUT_S), "no SUBACK"

    def publish_acked(self, topic: str, payloads: list[bytes]) -> None:
        """Publish QoS 1 and wait for every PUBACK (tracked by mid, see infrastructure.md §3.2)."""
        mids = [self.client.publish(topic, payload, qos=1).mid for payload in payloads]
        with self._acked_cond:
            assert self._acked_cond.wait_for(lambda: all(m in self._acked for m in mids), TIMEOUT_S)
            assert not any(self._acked[m].is_failure for m in mids), [str(self._acked[m]) for m in mids]

    def receive(self, count: int) -> list[mqtt.MQTTMessage]:
        return [self.messages.get(timeout=TIMEOUT_S) for _ in range(count)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_qos1_publish_reaches_subscriber(mosquitto: MosquittoServer) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    subscriber = MqttPeer(mosquitto)
    publisher = MqttPeer(mosquitto)
    try:
        subscriber.subscribe("sensors/+/emg")
        publisher.publish_acked("sensors/c1/emg", [b"hello"])
        [message] = subscriber.receive(1)
        assert (message.topic, message.payload, message.qos) == ("sensors/c1/emg", b"hello", 1)
    finally:
        publisher.close()
        subscriber.close()


def test_persistent_session_survives_broker_sigkill(mosquitto: MosquittoServer) -> None:
    """PUBACKed messages for an offline persistent session survive SIGKILL + restart on the same port."""
    detector = MqttPeer(mosquitto, "detector-under-test", clean_start=False, session_expiry=3600)
    detector.subscribe("sensors/+/emg")
    detector.close()

    collector = MqttPeer(mosquitto)
    payloads = [str(i).encode() for i in range(50)]
    collector.publish_acked("sensors/c1/emg", payloads)
    # mosquitto sends the PUBACK *before* it saves (src/loop.c: mux__handle() then persist__backup()), so
    # a SIGKILL right after the last PUBACK lost that message in 2 of 200 runs under CPU load, even with
    # autosave_on_changes. A later acknowledged round trip on the same connection proves the save is done.
    collector.publish_acked("test/save-barrier", [b""])
    collector.close()

    port = mosquitto.port
    mosquitto.kill()
    mosquitto.start()
    assert mosquitto.port == port

    detector = MqttPeer(mosquitto, "detector-under-test", clean_start=False, session_expiry=3600)
    try:
        assert detector.session_present
        assert [m.payload for m in detector.receive(len(payloads))] == payloads
        assert detector.messages.empty()
    finally:
        detector.close()


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_influxdb_client_writes_reach_influxd(influx_db: InfluxTestDatabase, gzip: bool) -> None:
    now_ms = time.time_ns() // 1_000_000
    points = [
        {
            "measurement": "emg",
            "tags": {"sensor": "s1"},
            "fields": {"rms": 0.5 * i, "label": "ok"},
            "time": (now_ms - i) * 10**6,
        }
        for i in range(25)
    ]
    with InfluxDBClient(url=influx_db.v2_url, token="x", org="-", enable_gzip=gzip) as client:
        assert client.health().status == "pass"
        write_api = client.write_api(write_options=SYNCHRONOUS)
        write_api.write(bucket=influx_db.bucket, record=points)
        write_api.write(influx_db.name, record=f"acc,sensor=s1 x=1.5 {now_ms}", write_precision=WritePrecision.MS)

    assert influx_db.query('SELECT count(*) FROM "emg"') == [{"time": 0, "count_rms": 25, "count_label": 25}]
    assert influx_db.query('SELECT x FROM "acc"') == [{"time": now_ms, "x": 1.5}]
    assert influx_db.query('SELECT count(rms) FROM "emg" GROUP BY "sensor"') == [
        {"sensor": "s1", "time": 0, "count": 25}
    ]


def test_field_type_conflict_is_relayed_as_400(influx_db: InfluxTestDatabase) -> None:
    """A real influxd error no mock would invent reaches the client with its status and message."""
    with InfluxDBClient(url=influx_db.v2_url, token="x", org="-") as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        write_api.write(bucket=influx_db.bucket, record="emg,sensor=s1 rms=0.5")
        with pytest.raises(ApiException) as raised:
            write_api.write(bucket=influx_db.bucket, record="emg,sensor=s1 rms=1i")
    # influxd 1.x error bodies are {"error": ...} (2.x uses {"code", "message"}); relayed unchanged.
    assert raised.value.status == 400
    assert json.loads(raised.value.body) == {
        "error": 'partial write: field type conflict: input field "rms" on measurement "emg" '
        "is type integer, already exists as type float dropped=1"
    }
    assert influx_db.query('SELECT count(rms) FROM "emg"') == [{"time": 0, "count": 1}]


def test_adapter_stop_start_simulates_database_outage(influx_db: InfluxTestDatabase) -> None:
    with InfluxDBClient(url=influx_db.v2_url, token="x", org="-") as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        influx_db.adapter.stop()
        with pytest.raises(urllib3.exceptions.HTTPError):
            write_api.write(bucket=influx_db.bucket, record="emg rms=0.5 1")
        influx_db.adapter.start()
        write_api.write(bucket=influx_db.bucket, record="emg rms=0.5 2")
    assert influx_db.query('SELECT rms FROM "emg"') == [{"time": 0, "rms": 0.5}]


def test_influxd_sigkill_then_restart_keeps_acknowledged_writes(influx_db: InfluxTestDatabase) -> None:
    """While influxd is down the adapter answers 503; after restart (same port) the acked write is there."""
    with InfluxDBClient(url=influx_db.v2_url, token="x", org="-") as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        write_api.write(bucket=influx_db.bucket, record="emg rms=0.5")
        influx_db.server.kill()
        with pytest.raises(ApiException) as raised:
            write_api.write(bucket=influx_db.bucket, record="emg rms=0.7")
        assert raised.value.status == 503
        influx_db.server.start()
    assert influx_db.query('SELECT count(rms) FROM "emg"') == [{"time": 0, "count": 1}]


def test_missing_binary_says_how_to_install() -> None:
    with pytest.raises(RuntimeError, match="not-a-crampwatch-server is not installed") as raised:
        find_binary("not-a-crampwatch-server")
    assert INSTALL_HINT in str(raised.value)
    assert INSTALL_HINT == 'run "bash tests/run.sh" (installs mosquitto and influxdb with apt-get)'
