"""The one error tree of CrampWatch, shared by the collector and the detector.

Every library error (paho, pyedflib, bleak, influxdb-client, skops, OS) is translated into one of these at
the boundary where it happens, with a message a person can act on::

    CrampWatchError
    ├── ConfigError        a setting is invalid; names the flag / environment variable and the fix
    ├── FrameError         a wire frame is malformed (bad magic, version, CRC, length, units ...)
    ├── RecordingError     a recording file is unreadable, truncated, or has unusable channels
    ├── BrokerError        the MQTT broker cannot be reached or refused us
    ├── StreamError        a stream cannot be processed (units, rate change mid-stream ...)
    ├── ModelError         the model file is missing, tampered with, or does not fit this code
    └── SinkError          a sink (InfluxDB, MQTT, file) rejected or could not take a write
                           (``retryable`` says whether trying again later can help)

The BLE side adds its own subclasses in :mod:`collector.ble.errors`.
"""

from __future__ import annotations


class CrampWatchError(Exception):
    """Base class of every error CrampWatch raises on purpose."""


class ConfigError(CrampWatchError):
    """A setting is invalid. The message names the setting and how to fix it."""


class FrameError(CrampWatchError):
    """A binary frame could not be decoded; ``reason`` says which check failed."""

    def __init__(self, reason: str, *, topic: str | None = None) -> None:
        self.reason = reason
        self.topic = topic
        where = f" on topic {topic!r}" if topic else ""
        super().__init__(f"malformed frame{where}: {reason}")


class RecordingError(CrampWatchError):
    """A recording file cannot be used. ``path`` and ``channel`` say where the problem is."""

    def __init__(self, path: str, problem: str, *, channel: str | None = None) -> None:
        self.path = path
        self.channel = channel
        self.problem = problem
        where = f"{path}" + (f", channel {channel!r}" if channel else "")
        super().__init__(f"{where}: {problem}")


class BrokerError(CrampWatchError):
    """The MQTT broker could not be reached, or refused the connection."""


class StreamError(CrampWatchError):
    """A stream's samples cannot be used as they are."""


class ModelError(CrampWatchError):
    """The model cannot be used: missing, tampered with (hash mismatch), or incompatible."""


class SinkError(CrampWatchError):
    """A sink failed to take a write."""

    def __init__(self, sink: str, message: str, *, retryable: bool) -> None:
        self.sink = sink
        self.retryable = retryable
        super().__init__(f"{sink}: {message}")
