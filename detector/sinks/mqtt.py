"""Publish each event as JSON on ``<prefix>/<patient>/events`` (QoS 1), for alerting and other consumers.

Also the MQTT side of the dead letter: its lines on ``<prefix>/dead-letter``.
"""

from __future__ import annotations

import logging
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


class MqttEventSink:
    name = "mqtt-events"
    takes_summaries = False

    def __init__(self, client: mqtt.Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def write_events(self, events: list[Event]) -> None:
        for e in events:
            info = self.client.publish(events_topic(self.prefix, e.patient), e.to_json(), qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                raise SinkError(self.name, f"publish failed: {mqtt.error_string(info.rc)}", retryable=True)

    def write_summaries(self, summaries: list[Summary]) -> None:
        pass  # summaries go to the database only

    def close(self) -> None:
        pass
