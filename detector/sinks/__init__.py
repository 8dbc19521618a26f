"""Where events and summaries go. Adding a sink = adding one module here and registering it.

influx   InfluxDB via influxdb-client (events and 1 Hz summaries)
mqtt     each event as JSON on <prefix>/<patient>/events
file     JSON lines on disk (the fallback when no InfluxDB is configured)
"""

from .base import Sink, SinkSet
from .file import JsonlSink
from .influx import InfluxSink
from .mqtt import MqttEventSink

__all__ = ["InfluxSink", "JsonlSink", "MqttEventSink", "Sink", "SinkSet"]
