"""The dead letter: events and summaries a sink will never take, kept on disk with the reason.

Why: a sink that refuses an item for good (a field type conflict, a missing database, a wrong token)
must neither block the items behind it nor lose it. The item goes here, one JSON object per line::

    {"time": "2026-12-06T09:41:35.123Z", "sink": "influxdb", "kind": "event",
     "reason": "influxdb: InfluxDB at http://db:8086 answered 400: ...", "record": {...}}

``record`` holds the event's or summary's fields as the detector made them (events also carry
``onset_ns`` and ``duration_s``), so an operator can fix the cause and write them again.

Frames the detector refuses at its edge (beyond physical limits, a bad id, a stream they do not fit)
come here too, with ``"sink": "detector"``, ``"kind": "frame"`` and a ``record`` that says where the frame
came from and what it claimed (topic, size, and the header fields once it decoded), never its samples.

The file is created only when the first item arrives, so a healthy run leaves no empty file behind.
With ``mirror`` each line is also handed to a callable as it arrives; the service uses it to publish the
line on MQTT (``<prefix>/dead-letter``) so that an alert can fire at night, not when someone reads a file.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..events import Event, Summary

log = logging.getLogger(__name__)


def record_of(item: Event | Summary) -> dict[str, Any]:
    """The item's fields as JSON-ready values (an event's JSON adds onset_ns and duration_s)."""
    if isinstance(item, Event):
        body: dict[str, Any] = json.loads(item.to_json())
        return body
    return asdict(item)


class DeadLetterFile:
    """Appends refused items to a JSON-lines file (fsynced: nobody can resend them if they are lost).

    If the file cannot be written (disk full, no permission), the lines are kept in memory, bounded by
    ``max_backlog`` (oldest dropped, counted and logged), and written with the next item or at close.
    """

    def __init__(self, path: Path, *, max_backlog: int = 100_000, mirror: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.mirror = mirror
        self.max_backlog = max_backlog
        self.written = 0
        self.lost = 0
        self._backlog: deque[str] = deque()
        self._failing = False

    def add(self, sink: str, kind: str, reason: str, items: Sequence[Event | Summary]) -> None:
        self.add_records(sink, kind, reason, [record_of(item) for item in items])

    def add_records(self, sink: str, kind: str, reason: str, records: Sequence[dict[str, Any]]) -> None:
        """Dead-letter ``records`` (JSON-ready dicts) with ``reason``; :meth:`add` for events and summaries."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = [
            json.dumps({"time": now, "sink": sink, "kind": kind, "reason": reason, "record": record}, sort_keys=True)
            for record in records
        ]
        self._backlog.extend(lines)
        if self.mirror is not None:
            for line in lines:
                self.mirror(line)
        overflow = len(self._backlog) - self.max_backlog
        if overflow > 0:
            for _ in range(overflow):
                self._backlog.popleft()
            self.lost += overflow
            log.error(
                "dead letter %s cannot be written and %d lines are waiting: lost the %d oldest (%d in all)",
                self.path,
                self.max_backlog,
                overflow,
                self.lost,
            )
        self.flush()

    def flush(self) -> None:
        if not self._backlog:
            return
        lines = list(self._backlog)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            if not self._failing:  # one line per outage of the file, not one per item
                log.error(
                    "cannot append to the dead letter %s (%s); keeping %d lines in memory and trying again",
                    self.path,
                    err.strerror or err,
                    len(lines),
                )
            self._failing = True
            return
        if self._failing:
            log.info("dead letter %s is writable again", self.path)
        self._failing = False
        self._backlog.clear()
        self.written += len(lines)

    @property
    def waiting(self) -> int:
        """Lines not yet on disk."""
        return len(self._backlog)

    def close(self) -> None:
        self.flush()
        if self._backlog:
            log.error("dead letter %s: %d lines could not be written and are lost", self.path, len(self._backlog))
            self.lost += len(self._backlog)
            self._backlog.clear()
