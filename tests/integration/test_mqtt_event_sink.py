"""The MQTT event sink counts an event as written only once the broker acknowledged it (real mosquitto).

Why it matters: the detector commits its journal after the sinks took a round's events, so an event that
was only handed to paho when the detector died would be lost on MQTT for good (the replay starts past it).
With the wait, an event the broker has not acknowledged is a failed write and stays in the retry queue.
"""

from __future__ import annotations

import contextlib
import json
import queue
import time

import paho.mqtt.client as mqtt
import pytest

from crampwatch.errors import SinkError
from crampwatch.mqtt import connect, make_client
from detector.events import Event
from detector.sinks import SinkSet
from detector.sinks.mqtt import MqttEventSink
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration


def _event(onset_s: float) -> Event:
    return Event("p1", "d1", "cramp", onset_s, onset_s + 40.0, 0.9, 250.0, start_ns=10**18)


def _listen(url: str) -> tuple[mqtt.Client, queue.Queue[dict[str, object]]]:
    got: queue.Queue[dict[str, object]] = queue.Queue()
    client = make_client(url, "test-event-listener")
    client.on_message = lambda _c, _u, msg: got.put(json.loads(msg.payload))
    connect(client)
    client.subscribe("cramp/v1/+/events", qos=1)
    time.sleep(0.3)
    return client, got


def _wait_disconnected(client: mqtt.Client, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.is_connected()


def test_an_event_the_broker_has_not_acknowledged_stays_queued_and_is_delivered_later(
    mosquitto: MosquittoServer,
) -> None:
    listener, got = _listen(mosquitto.url)
    detector = make_client(mosquitto.url, "test-event-sink")
    connect(detector)
    sinks = SinkSet([MqttEventSink(detector, "cramp/v1", puback_timeout_s=5.0)])
    try:
        sinks.write([_event(10.0)], [])
        assert got.get(timeout=5)["onset_s"] == 10.0
        assert sinks.stats["mqtt-events"].written_events == 1

        mosquitto.kill()
        _wait_disconnected(detector)
        sinks.write([_event(20.0)], [])  # the broker is gone: not written, kept
        assert sinks.pending("mqtt-events") == (1, 0)
        assert sinks.stats["mqtt-events"].written_events == 1

        mosquitto.start()
        deadline = time.monotonic() + 20  # paho's network threads reconnect by themselves
        while not (detector.is_connected() and listener.is_connected()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        sinks.retry()
        assert sinks.pending("mqtt-events") == (0, 0)
        assert sinks.stats["mqtt-events"].written_events == 2
        onsets = set()
        deadline = time.monotonic() + 10
        while 20.0 not in onsets and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                onsets.add(float(got.get(timeout=1)["onset_s"]))  # type: ignore[arg-type]
        assert 20.0 in onsets  # at least once (paho may also send its own queued copy: same id)
    finally:
        for client in (detector, listener):
            client.loop_stop()
            client.disconnect()


def test_a_write_without_a_connection_is_a_retryable_failure(mosquitto: MosquittoServer) -> None:
    detector = make_client(mosquitto.url, "test-event-sink-down")
    connect(detector)
    mosquitto.kill()
    _wait_disconnected(detector)
    try:
        with pytest.raises(SinkError) as err:
            MqttEventSink(detector, "cramp/v1", puback_timeout_s=1.0).write_events([_event(5.0)])
        assert err.value.retryable
    finally:
        detector.loop_stop()
