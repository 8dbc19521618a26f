"""Publish each event as JSON on ``<prefix>/<patient>/events`` (QoS 1), for alerting and other consumers."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from crampwatch.errors import SinkError
from crampwatch.topics import events_topic

from ..events import Event, Summary


class MqttEventSink:
    name = "mqtt-events"

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
