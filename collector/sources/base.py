"""The source interfaces, and ``--speed`` for the sources that can run faster than real time."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from crampwatch.frames import Frame


class Source(Protocol):
    """Yields frames of all its streams in device-time order; the last frame of each stream has EOS set."""

    def frames(self) -> Iterator[Frame]: ...


@runtime_checkable
class LiveSource(Source, Protocol):
    """A source that streams until told to stop (LSL, BLE), rather than to the end of a recording.

    ``stop()`` may be called from any thread or a signal handler; :meth:`frames` then yields what it has
    buffered and returns.
    """

    def stop(self) -> None: ...


def parse_speed(text: str) -> float | None:
    """``--speed``: a factor of real time (1 = real time), or ``max`` (None: as fast as the broker takes it)."""
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes a factor like 1, 60 or 'max', not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("--speed must be > 0 (1 = real time) or 'max'")
    return value
