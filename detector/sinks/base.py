"""The sink interface, and a fan-out that keeps going when one sink fails.

A sink raises :class:`SinkError`; ``SinkSet`` decides what happens to the items:

============================  =========================================================================
error                         what SinkSet does
============================  =========================================================================
``retryable=True``            keep the items queued (in memory, bounded) and send them again with the
                              next write; the first failure and then one line a minute are logged
``SinkSetupError``            the sink refuses every write as it is set up (token, database): the batch
                              goes to the dead letter at once (splitting it would not help)
other non-retryable           some item in the batch is refused (e.g. a field type conflict): the batch
                              is split in halves and resent until the refused items are alone; those go
                              to the dead letter, the others are written
============================  =========================================================================

Why split: one bad event must not take the good events of its batch down with it, and must not block
the events that come after it (an earlier version kept and resent it forever).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from crampwatch.errors import SinkError

from ..events import Event, Summary
from .deadletter import DeadLetterFile

log = logging.getLogger(__name__)

T = TypeVar("T", Event, Summary)


class SinkSetupError(SinkError):
    """The sink refuses every write as it is configured (wrong token, no such database): not the data's fault.

    Never retryable: retrying cannot help until a person fixes the setup.
    """

    def __init__(self, sink: str, message: str) -> None:
        super().__init__(sink, message, retryable=False)


class Sink(Protocol):
    """Takes events and summaries; raises SinkError (``retryable`` when a later retry can succeed).

    After a non-retryable error SinkSet resends parts of the batch to find the refused items, so a sink
    that raises one must not have half-taken the batch, or writing an item twice must be harmless
    (InfluxDB overwrites a point with the same series and time).
    """

    name: str

    def write_events(self, events: list[Event]) -> None: ...

    def write_summaries(self, summaries: list[Summary]) -> None: ...

    def close(self) -> None: ...


@dataclass
class SinkStats:
    """Counters of one sink since start."""

    written_events: int = 0
    written_summaries: int = 0
    dead_lettered_events: int = 0
    dead_lettered_summaries: int = 0
    failed_writes: int = 0  # retryable failures (each attempt counts)


@dataclass
class _Queue:
    events: list[Event] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    last_error: SinkError | None = None
    failures_in_a_row: int = 0
    last_failure_report: float | None = None
    last_dead_letter_report: float | None = None


class SinkSet:
    """Writes to every sink; a failed write is kept and retried, a refused item goes to the dead letter.

    The retry queue is in memory and bounded per sink (``max_pending_events``, ``max_pending_summaries``);
    what overflows it goes to the dead letter, oldest first, as does whatever is still queued at close.
    Without a dead letter, such items are counted and logged as lost.
    """

    def __init__(
        self,
        sinks: list[Sink],
        *,
        dead_letter: DeadLetterFile | None = None,
        max_pending_events: int = 10_000,
        max_pending_summaries: int = 100_000,
        report_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sinks = sinks
        self.dead_letter = dead_letter
        self.max_pending_events = max_pending_events
        self.max_pending_summaries = max_pending_summaries
        self.report_interval_s = report_interval_s
        self._clock = clock
        self.stats: dict[str, SinkStats] = {s.name: SinkStats() for s in sinks}
        self._queues: dict[str, _Queue] = {s.name: _Queue() for s in sinks}

    def write(self, events: list[Event], summaries: list[Summary]) -> None:
        for sink in self.sinks:
            queue = self._queues[sink.name]
            queue.events.extend(events)
            queue.summaries.extend(summaries)
            self._flush(sink, queue)
            self._bound(sink, queue)

    def pending(self, sink: str) -> tuple[int, int]:
        """(events, summaries) queued for retry for the sink named ``sink``."""
        queue = self._queues[sink]
        return len(queue.events), len(queue.summaries)

    def close(self) -> None:
        """Try the queued items once more; what still cannot be written goes to the dead letter."""
        for sink in self.sinks:
            queue = self._queues[sink.name]
            if queue.events or queue.summaries:
                self._flush(sink, queue)
            if queue.events or queue.summaries:
                reason = (
                    f"the detector stopped while {sink.name} could not take writes (last error: {queue.last_error})"
                )
                self._dead_letter(sink, "event", queue.events, reason)
                self._dead_letter(sink, "summary", queue.summaries, reason)
                queue.events, queue.summaries = [], []
            sink.close()
            stats = self.stats[sink.name]
            if stats.dead_lettered_events or stats.dead_lettered_summaries:
                log.warning(
                    "%s: %d events and %d summaries went to the dead letter during this run (%s)",
                    sink.name,
                    stats.dead_lettered_events,
                    stats.dead_lettered_summaries,
                    self.dead_letter.path if self.dead_letter else "none configured: lost",
                )
        if self.dead_letter is not None:
            self.dead_letter.close()

    # -- internals ---------------------------------------------------------------------------------

    def _flush(self, sink: Sink, queue: _Queue) -> None:
        if queue.events:
            queue.events = self._deliver(sink, "event", queue.events, sink.write_events)
        # While events wait for a sink that is down, don't send it a second request that will also fail.
        if queue.summaries and not queue.events:
            queue.summaries = self._deliver(sink, "summary", queue.summaries, sink.write_summaries)

    def _deliver(self, sink: Sink, kind: str, items: list[T], write: Callable[[list[T]], None]) -> list[T]:
        """Write ``items``; return those to keep for retry (the sink is down). Refused items are dead-lettered."""
        try:
            write(items)
        except SinkError as err:
            if err.retryable:
                self._note_failure(sink, err)
                return items
            if isinstance(err, SinkSetupError) or len(items) == 1:
                self._dead_letter(sink, kind, items, str(err))
                return []
            half = len(items) // 2
            kept = self._deliver(sink, kind, items[:half], write)
            if kept:  # the sink went down while we were splitting: keep the rest too, in order
                return kept + items[half:]
            return self._deliver(sink, kind, items[half:], write)
        self._note_success(sink, kind, len(items))
        return []

    def _note_success(self, sink: Sink, kind: str, count: int) -> None:
        stats = self.stats[sink.name]
        if kind == "event":
            stats.written_events += count
        else:
            stats.written_summaries += count
        queue = self._queues[sink.name]
        if queue.failures_in_a_row:
            log.info("%s: writes succeed again after %d failed attempts", sink.name, queue.failures_in_a_row)
            queue.failures_in_a_row = 0
            queue.last_error = None

    def _note_failure(self, sink: Sink, err: SinkError) -> None:
        """Count a retryable failure; log the first one, then one line per report interval (not one per write)."""
        self.stats[sink.name].failed_writes += 1
        queue = self._queues[sink.name]
        queue.last_error = err
        queue.failures_in_a_row += 1
        now = self._clock()
        last = queue.last_failure_report
        if queue.failures_in_a_row == 1 or last is None or now - last >= self.report_interval_s:
            queue.last_failure_report = now
            log.error(
                "%s (%d failed attempts in a row; %d events, %d summaries queued for retry)",
                err,
                queue.failures_in_a_row,
                len(queue.events),
                len(queue.summaries),
            )

    def _bound(self, sink: Sink, queue: _Queue) -> None:
        """Move what overflows the retry queue to the dead letter, oldest first."""
        reason = f"{sink.name} could not take writes and its retry queue was full (last error: {queue.last_error})"
        extra = len(queue.events) - self.max_pending_events
        if extra > 0:
            self._dead_letter(sink, "event", queue.events[:extra], reason)
            del queue.events[:extra]
        extra = len(queue.summaries) - self.max_pending_summaries
        if extra > 0:
            self._dead_letter(sink, "summary", queue.summaries[:extra], reason)
            del queue.summaries[:extra]

    def _dead_letter(self, sink: Sink, kind: str, items: Sequence[Event | Summary], reason: str) -> None:
        if not items:
            return
        stats = self.stats[sink.name]
        if kind == "event":
            stats.dead_lettered_events += len(items)
        else:
            stats.dead_lettered_summaries += len(items)
        where = f"moved to the dead letter {self.dead_letter.path}" if self.dead_letter else "lost (no dead letter)"
        # Events are rare and each matters: one line per batch. Summaries come every second per device, so
        # after the first line they are reported once per interval with a running count.
        queue = self._queues[sink.name]
        now = self._clock()
        last = queue.last_dead_letter_report
        if kind == "event" or last is None or now - last >= self.report_interval_s:
            if kind == "summary":
                queue.last_dead_letter_report = now
            total = stats.dead_lettered_events if kind == "event" else stats.dead_lettered_summaries
            log.error("%d %s(s) %s (%d in all): %s", len(items), kind, where, total, reason)
        if self.dead_letter is not None:
            self.dead_letter.add(sink.name, kind, reason, items)
