"""Errors raised by the collector package.

Every library error (paho, pyedflib, bleak, OS) is translated into one of these at the boundary where it
happens, with a message a person can act on::

    CollectorError
    ├── ConfigError        a setting is invalid; names the flag / environment variable and the fix
    ├── FrameError         a wire frame is malformed (bad magic, version, CRC, length, units ...)
    ├── RecordingError     a recording file is unreadable, truncated, or has unusable channels
    └── BrokerError        the MQTT broker cannot be reached or refused us
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base class of every error the collector raises on purpose."""


class ConfigError(CollectorError):
    """A setting is invalid. The message names the setting and how to fix it."""


class FrameError(CollectorError):
    """A binary frame could not be decoded; ``reason`` says which check failed."""

    def __init__(self, reason: str, *, topic: str | None = None) -> None:
        self.reason = reason
        self.topic = topic
        where = f" on topic {topic!r}" if topic else ""
        super().__init__(f"malformed frame{where}: {reason}")


class RecordingError(CollectorError):
    """A recording file cannot be used. ``path`` and ``channel`` say where the problem is."""

    def __init__(self, path: str, problem: str, *, channel: str | None = None) -> None:
        self.path = path
        self.channel = channel
        self.problem = problem
        where = f"{path}" + (f", channel {channel!r}" if channel else "")
        super().__init__(f"{where}: {problem}")


class BrokerError(CollectorError):
    """The MQTT broker could not be reached, or refused the connection."""
