"""Where events and summaries go. Adding a sink = adding one module here and registering it.

influx   InfluxDB via influxdb-client (events and 1 Hz summaries)
mqtt     each event as JSON on <prefix>/<patient>/events
file     JSON lines on disk (the fallback when no InfluxDB is configured)

SinkSet fans out to them; what a sink refuses for good goes to the dead letter (deadletter.py).
"""

from .base import Sink, SinkSet, SinkSetupError, SinkStats
from .deadletter import DeadLetterFile
from .file import JsonlSink
from .influx import InfluxSink
from .mqtt import MqttEventSink

__all__ = [
    "DeadLetterFile",
    "InfluxSink",
    "JsonlSink",
    "MqttEventSink",
    "Sink",
    "SinkSet",
    "SinkSetupError",
    "SinkStats",
]
