"""Errors raised by the detector package.

Library errors (paho, influxdb-client, skops, OS) are translated into these where they happen::

    DetectorError
    ├── ConfigError       a setting is invalid; names the flag / environment variable and the fix
    ├── ModelError        the model file is missing, tampered with, or does not fit this code
    ├── StreamError       a stream cannot be processed (units, rate change mid-stream ...)
    └── SinkError         a sink (InfluxDB, MQTT, file) rejected or could not take a write
                          (``retryable`` says whether trying again later can help)
"""

from __future__ import annotations


class DetectorError(Exception):
    """Base class of every error the detector raises on purpose."""


class ConfigError(DetectorError):
    """A setting is invalid. The message names the setting and how to fix it."""


class ModelError(DetectorError):
    """The model cannot be used: missing, tampered with (hash mismatch), or incompatible."""


class StreamError(DetectorError):
    """A stream's samples cannot be used as they are."""


class SinkError(DetectorError):
    """A sink failed to take a write."""

    def __init__(self, sink: str, message: str, *, retryable: bool) -> None:
        self.sink = sink
        self.retryable = retryable
        super().__init__(f"{sink}: {message}")
