"""The source interface and real-time pacing shared by every source."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Protocol

from crampwatch.frames import Frame


class Source(Protocol):
    """Yields frames of all its streams in device-time order; the last frame of each stream has EOS set."""

    def frames(self) -> Iterator[Frame]: ...


def parse_speed(text: str) -> float | None:
    """``--speed`` for :func:`paced`: a factor of real time (1 = real time), or ``max`` (None: at once)."""
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes a factor like 1, 60 or 'max', not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("--speed must be > 0 (1 = real time) or 'max'")
    return value


def paced(frames: Iterator[Frame], speed: float | None, start_ns: int) -> Iterator[Frame]:
    """Release each frame when its last sample would exist at ``speed`` x real time (None = at once)."""
    wall0 = time.monotonic()
    for frame in frames:
        if speed:
            due = wall0 + (frame.t0_ns + frame.duration_ns - start_ns) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield frame
