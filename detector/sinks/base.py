"""The sink interface, and a fan-out that keeps going when one sink fails.

A sink raises :class:`SinkError`; ``SinkSet`` decides what happens to the items:

============================  =========================================================================
error                         what SinkSet does
============================  =========================================================================
``retryable=True``            keep the items queued (bounded; on disk in the service) and send them again
                              when a retry is due; the first failure and then one line a minute are logged
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
from dataclasses import dataclass
from typing import Protocol, TypeVar

from crampwatch.errors import SinkError

from ..events import Event, Summary
from .deadletter import DeadLetterFile
from .queue import Kind, MemoryQueue, PendingQueue

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

    #: Final events only: the ``open`` and ``cancelled`` announcements of live events are counted apart, so
    #: "events written" can be compared with the events detected (one final event each).
    written_events: int = 0
    written_announcements: int = 0
    written_summaries: int = 0
    dead_lettered_events: int = 0
    dead_lettered_summaries: int = 0
    failed_writes: int = 0  # retryable failures (each attempt counts)


@dataclass
class _Status:
    """How one sink is doing: its last error and when to report and retry next."""

    last_error: SinkError | None = None
    failures_in_a_row: int = 0
    last_failure_report: float | None = None
    last_dead_letter_report: float | None = None
    next_retry: float | None = None


#: Most items read from the retry queue for one write request.
FLUSH_BATCH = 5000
KINDS: tuple[Kind, Kind] = ("event", "summary")


class SinkSet:
    """Writes to every sink; a failed write is kept and retried, a refused item goes to the dead letter.

    The retry queue (:mod:`detector.sinks.queue`) is bounded per sink (``max_pending_events``,
    ``max_pending_summaries``); what overflows it goes to the dead letter, oldest first, with an error line.
    In memory (the default) it is dead-lettered at close; the service gives it a durable queue on disk
    (:meth:`use_queue`), which keeps its items across a restart instead.

    ``retry_s`` > 0: after a failure, the sink is tried again only when ``retry_s`` has passed, whether by
    :meth:`retry` (the service calls it on a timer, so the queue drains with no new data) or by a write;
    meanwhile writes only queue, so a database that hangs cannot stall the caller at every write. With 0
    every write retries at once.
    """

    def __init__(
        self,
        sinks: list[Sink],
        *,
        dead_letter: DeadLetterFile | None = None,
        max_pending_events: int = 10_000,
        max_pending_summaries: int = 100_000,
        report_interval_s: float = 60.0,
        retry_s: float = 0.0,
        queue: PendingQueue | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sinks = sinks
        self.dead_letter = dead_letter
        self.max_pending_events = max_pending_events
        self.max_pending_summaries = max_pending_summaries
        self.report_interval_s = report_interval_s
        self.retry_s = retry_s
        self.queue: PendingQueue = queue if queue is not None else MemoryQueue()
        self._clock = clock
        self.stats: dict[str, SinkStats] = {s.name: SinkStats() for s in sinks}
        self._status: dict[str, _Status] = {s.name: _Status() for s in sinks}

    def use_queue(self, queue: PendingQueue) -> None:
        """Keep the retry queue in ``queue`` from now on; what the old one holds moves over, after what is there."""
        for sink in self.sinks:
            for kind in KINDS:
                held = self.queue.count(sink.name, kind)
                if held:
                    items = self.queue.head(sink.name, kind, held)
                    queue.push(sink.name, kind, items)  # type: ignore[arg-type]
                    self.queue.drop_head(sink.name, kind, held)
        self.queue = queue
        for sink in self.sinks:
            events, summaries = self.pending(sink.name)
            if events or summaries:
                log.warning(
                    "%s: %d events and %d summaries are queued %s from before; they are written first",
                    sink.name,
                    events,
                    summaries,
                    queue.where,
                )
            self._bound(sink)

    def write(self, events: list[Event], summaries: list[Summary]) -> None:
        for sink in self.sinks:
            # A sink for events only (MQTT) neither counts nor queues summaries it would throw away.
            taken = summaries if getattr(sink, "takes_summaries", True) else []
            if self._waiting(sink.name):
                # Behind older items: queue, to keep the order, and send when a retry is due.
                self._push(sink, "event", events)
                self._push(sink, "summary", taken)
                if self._due(sink.name):
                    self._flush(sink)
            else:
                kept = self._deliver(sink, "event", events, sink.write_events) if events else []
                self._push(sink, "event", kept)
                # While events wait for a sink that is down, don't send it a second request that will also fail.
                if kept:
                    self._push(sink, "summary", taken)
                elif taken:
                    self._push(sink, "summary", self._deliver(sink, "summary", taken, sink.write_summaries))
            self._bound(sink)

    def retry(self) -> None:
        """Send what waits for each sink whose retry is due (the service calls this on a timer)."""
        for sink in self.sinks:
            if self._waiting(sink.name) and self._due(sink.name):
                self._flush(sink)

    def pending(self, sink: str) -> tuple[int, int]:
        """(events, summaries) queued for retry for the sink named ``sink``."""
        return self.queue.count(sink, "event"), self.queue.count(sink, "summary")

    def total_pending(self) -> int:
        """Items queued for retry over all sinks (the heartbeat reports it)."""
        return sum(sum(self.pending(sink.name)) for sink in self.sinks)

    def close(self) -> None:
        """Try the queued items once more, then say how many remain.

        A durable queue keeps them for the next start; from a memory queue they go to the dead letter.
        """
        for sink in self.sinks:
            if self._waiting(sink.name):
                self._flush(sink)
            events, summaries = self.pending(sink.name)
            stats = self.stats[sink.name]
            last_error = self._status[sink.name].last_error
            if (events or summaries) and self.queue.durable:
                log.warning(
                    "%s: stopping with %d events and %d summaries still queued %s (last error: %s); "
                    "they are written when the detector starts again",
                    sink.name,
                    events,
                    summaries,
                    self.queue.where,
                    last_error,
                )
            elif events or summaries:
                reason = f"the detector stopped while {sink.name} could not take writes (last error: {last_error})"
                for kind, count in zip(KINDS, (events, summaries), strict=True):
                    self._dead_letter(sink, kind, self.queue.head(sink.name, kind, count), reason)
                    self.queue.drop_head(sink.name, kind, count)
            else:
                log.info(
                    "%s: %d events and %d summaries written in this run, none left queued "
                    "(and %d open/cancelled announcements of live events)",
                    sink.name,
                    stats.written_events,
                    stats.written_summaries,
                    stats.written_announcements,
                )
            sink.close()
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

    def _waiting(self, name: str) -> bool:
        return any(self.pending(name))

    def _due(self, name: str) -> bool:
        next_retry = self._status[name].next_retry
        return self.retry_s <= 0 or next_retry is None or self._clock() >= next_retry

    def _push(self, sink: Sink, kind: Kind, items: Sequence[Event | Summary]) -> None:
        if items:
            self.queue.push(sink.name, kind, list(items))  # type: ignore[arg-type]

    def _flush(self, sink: Sink) -> None:
        """Send the queue, oldest first, events before summaries; stop at the first retryable failure."""
        writers: tuple[Callable[[list[Event]], None], Callable[[list[Summary]], None]] = (
            sink.write_events,
            sink.write_summaries,
        )
        handled = 0
        for kind, write in zip(KINDS, writers, strict=True):
            while self.queue.count(sink.name, kind):
                items = self.queue.head(sink.name, kind, FLUSH_BATCH)
                kept = self._deliver(sink, kind, items, write)  # type: ignore[arg-type,type-var]
                # What _deliver keeps is always a tail of ``items``: the head is written or dead-lettered.
                self.queue.drop_head(sink.name, kind, len(items) - len(kept))
                handled += len(items) - len(kept)
                if kept:
                    return
        if handled:
            log.info("%s: its retry queue is empty again (%d items written or dead-lettered)", sink.name, handled)

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
        self._note_success(sink, kind, items)
        return []

    def _note_success(self, sink: Sink, kind: str, items: Sequence[Event | Summary]) -> None:
        stats = self.stats[sink.name]
        count = len(items)
        if kind == "event":
            finals = sum(1 for item in items if isinstance(item, Event) and item.state == "final")
            stats.written_events += finals
            stats.written_announcements += count - finals
        else:
            stats.written_summaries += count
        status = self._status[sink.name]
        if status.failures_in_a_row:
            events, summaries = self.pending(sink.name)
            log.info(
                "%s: writes succeed again after %d failed attempts (%d events, %d summaries still queued)",
                sink.name,
                status.failures_in_a_row,
                events,
                summaries,
            )
            status.failures_in_a_row = 0
            status.last_error = None
            status.next_retry = None

    def _note_failure(self, sink: Sink, err: SinkError) -> None:
        """Count a retryable failure; log the first one, then one line per report interval (not one per write)."""
        self.stats[sink.name].failed_writes += 1
        status = self._status[sink.name]
        status.last_error = err
        status.failures_in_a_row += 1
        now = self._clock()
        status.next_retry = now + self.retry_s
        last = status.last_failure_report
        if status.failures_in_a_row == 1 or last is None or now - last >= self.report_interval_s:
            status.last_failure_report = now
            events, summaries = self.pending(sink.name)
            log.error(
                "%s (%d failed attempts in a row; %d events, %d summaries queued %s for retry)",
                err,
                status.failures_in_a_row,
                events,
                summaries,
                self.queue.where,
            )

    def _bound(self, sink: Sink) -> None:
        """Move what overflows the retry queue to the dead letter, oldest first."""
        status = self._status[sink.name]
        reason = f"{sink.name} could not take writes and its retry queue was full (last error: {status.last_error})"
        for kind, bound in zip(KINDS, (self.max_pending_events, self.max_pending_summaries), strict=True):
            extra = self.queue.count(sink.name, kind) - bound
            if extra > 0:
                self._dead_letter(sink, kind, self.queue.head(sink.name, kind, extra), reason)
                self.queue.drop_head(sink.name, kind, extra)

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
        status = self._status[sink.name]
        now = self._clock()
        last = status.last_dead_letter_report
        if kind == "event" or last is None or now - last >= self.report_interval_s:
            if kind == "summary":
                status.last_dead_letter_report = now
            total = stats.dead_lettered_events if kind == "event" else stats.dead_lettered_summaries
            log.error("%d %s(s) %s (%d in all): %s", len(items), kind, where, total, reason)
        if self.dead_letter is not None:
            self.dead_letter.add(sink.name, kind, reason, items)
