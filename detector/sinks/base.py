"""The sink interface, and a fan-out that keeps going when one sink fails."""

from __future__ import annotations

import logging
from typing import Protocol

from crampwatch.errors import SinkError

from ..events import Event, Summary

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Takes events and summaries; raises SinkError (``retryable`` when a later retry can succeed)."""

    name: str

    def write_events(self, events: list[Event]) -> None: ...

    def write_summaries(self, summaries: list[Summary]) -> None: ...

    def close(self) -> None: ...


class SinkSet:
    """Writes to every sink; a failed write is kept and retried on the next call, so nothing is dropped.

    The retry buffer is in memory (bounded by ``max_pending``, oldest summaries dropped first with a
    warning; events are never dropped). A durable spool for a detector crash is future work.
    """

    def __init__(self, sinks: list[Sink], *, max_pending: int = 100_000) -> None:
        self.sinks = sinks
        self.max_pending = max_pending
        self._pending: dict[str, tuple[list[Event], list[Summary]]] = {s.name: ([], []) for s in sinks}

    def write(self, events: list[Event], summaries: list[Summary]) -> None:
        for sink in self.sinks:
            pend_events, pend_summaries = self._pending[sink.name]
            pend_events.extend(events)
            pend_summaries.extend(summaries)
            try:
                if pend_events:
                    sink.write_events(pend_events)
                    pend_events.clear()
                if pend_summaries:
                    sink.write_summaries(pend_summaries)
                    pend_summaries.clear()
            except SinkError as err:
                log.error("%s (%d events, %d summaries kept for retry)", err, len(pend_events), len(pend_summaries))
                if not err.retryable:
                    log.error("%s: the write cannot succeed as it is; dropping summaries, keeping events", sink.name)
                    pend_summaries.clear()
                if len(pend_summaries) > self.max_pending:
                    dropped = len(pend_summaries) - self.max_pending
                    del pend_summaries[:dropped]
                    log.warning("%s: dropped the %d oldest summaries while the sink is down", sink.name, dropped)

    @property
    def pending_events(self) -> int:
        return sum(len(e) for e, _ in self._pending.values())

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
