"""Publish each event as JSON on ``<prefix>/<patient>/events`` (QoS 1), for alerting and other consumers.

Also the MQTT side of the dead letter: its lines on ``<prefix>/dead-letter``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from crampwatch.errors import SinkError
from crampwatch.topics import events_topic

from ..events import Event, Summary

log = logging.getLogger(__name__)


def dead_letter_topic(prefix: str) -> str:
    """Where the detector publishes what a sink refused for good (one JSON dead-letter line per message).

    One level under the prefix, so it matches neither the data wildcards (``<prefix>/+/+/emg``) nor the
    event wildcard (``<prefix>/+/events``).
    """
    return f"{prefix}/dead-letter"


def dead_letter_publisher(client: mqtt.Client, prefix: str) -> Callable[[str], None]:
    """A ``DeadLetterFile`` mirror that publishes each line (QoS 1; paho keeps it while disconnected)."""
    topic = dead_letter_topic(prefix)

    def publish(line: str) -> None:
        info = client.publish(topic, line, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("could not publish a dead letter on %s: %s", topic, mqtt.error_string(info.rc))

    return publish


#: How long a write waits for the broker's PUBACKs of its events before it counts as failed (and retried).
PUBACK_TIMEOUT_S = 10.0


class MqttEventSink:
    """Events on MQTT, written only once the broker has acknowledged them.

    Why wait for the PUBACK: the detector commits its journal (and so may checkpoint past a frame) after
    the sinks have taken the round's events. If a publish only handed the event to paho, a detector killed
    before paho got it out would lose the event on MQTT for good: the replay after the restart starts past
    it. Waiting makes an unacknowledged event a failed write, which stays in the durable retry queue
    (``docs/reliability.md``). Events are rare (a few per patient and hour), so the wait costs one round
    trip per round with events. The price is at-least-once delivery: a retried event can arrive twice, with
    the same ``id``; consumers keep one per id.
    """

    name = "mqtt-events"
    takes_summaries = False

    def __init__(self, client: mqtt.Client, prefix: str, *, puback_timeout_s: float = PUBACK_TIMEOUT_S) -> None:
        self.client = client
        self.prefix = prefix
        self.puback_timeout_s = puback_timeout_s

    def write_events(self, events: list[Event]) -> None:
        sent: list[mqtt.MQTTMessageInfo] = []
        for e in events:
            info = self.client.publish(events_topic(self.prefix, e.patient), e.to_json(), qos=1)
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                raise SinkError(
                    self.name, "not connected to the broker; the events are kept and retried", retryable=True
                )
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise SinkError(self.name, f"publish failed: {mqtt.error_string(info.rc)}", retryable=True)
            sent.append(info)
        deadline = time.monotonic() + self.puback_timeout_s
        for info in sent:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as err:  # paho: the connection dropped while waiting
                raise SinkError(self.name, f"publish failed: {err}", retryable=True) from None
            if not info.is_published():
                raise SinkError(
                    self.name,
                    f"the broker did not acknowledge {len(sent)} event(s) within {self.puback_timeout_s:.0f} s; "
                    "they are kept and retried (check the broker's load and the detector's connection)",
                    retryable=True,
                )

    def write_summaries(self, summaries: list[Summary]) -> None:
        pass  # summaries go to the database only

    def close(self) -> None:
        pass
