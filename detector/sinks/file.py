"""JSON-lines file sink: the fallback when no InfluxDB is configured."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from crampwatch.errors import SinkError

from ..events import Event, Summary


class JsonlSink:
    """Appends one JSON object per event to ``path`` (summaries go to ``<stem>.summary.jsonl``)."""

    name = "file"

    def __init__(self, path: Path, *, summaries: bool = False) -> None:
        self.path = path
        self.summary_path = path.with_suffix(".summary.jsonl") if summaries else None

    def _append(self, path: Path, lines: list[str]) -> None:
        try:
            with open(path, "a") as fh:
                fh.write("".join(line + "\n" for line in lines))
        except OSError as err:
            raise SinkError(self.name, f"cannot append to {path}: {err.strerror}", retryable=True) from None

    def write_events(self, events: list[Event]) -> None:
        self._append(self.path, [e.to_json() for e in events])

    def write_summaries(self, summaries: list[Summary]) -> None:
        if self.summary_path is not None:
            self._append(self.summary_path, [json.dumps(asdict(s)) for s in summaries])

    def close(self) -> None:
        pass
