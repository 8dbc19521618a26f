"""The retry queue of :class:`~detector.sinks.base.SinkSet`: items a sink could not take yet, oldest first.

Three kinds, one interface (:class:`PendingQueue`):

* :class:`MemoryQueue`, for a SinkSet on its own (offline tools, unit tests): lost with the process, so
  SinkSet dead-letters what is left in it at close.
* :class:`SqliteQueue`, for the live service: rows in the detector's state database
  (:class:`detector.journal.StateStore`), written in the same transaction as the frame journal. So an
  item is on disk no later than the MQTT acknowledgement of the frame that produced it, survives a crash
  or a restart of the detector, and is sent again when the sink answers. Nothing is committed here: the
  owner of the connection commits (group commit, see the journal).
* :class:`ShardedQueue`, for a sharded service: one :class:`SqliteQueue` per shard it serves, each in that
  shard's state file, so queued items move with the shard.

Items are stored as JSON of their dataclass fields (:func:`encode`), so a row can be read by a person
(``sqlite3 detector-<client id>.db 'select body from pending'``) and by a later version of the detector.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from dataclasses import asdict
from typing import Literal, Protocol

from crampwatch.topics import shard_of

from ..events import Event, Summary

Kind = Literal["event", "summary"]

PENDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_by_sink ON pending (sink, kind, id);
"""


def encode(item: Event | Summary) -> str:
    """The item's dataclass fields as JSON (NaN kept: a summary without accelerometer has NaN activity)."""
    return json.dumps(asdict(item), sort_keys=True)


def decode(kind: Kind, body: str) -> Event | Summary:
    fields = json.loads(body)
    return Event(**fields) if kind == "event" else Summary(**fields)


class PendingQueue(Protocol):
    """A FIFO per (sink, kind). ``head`` reads without removing; ``drop_head`` removes what was handled."""

    #: Where the queue lives, for log lines ("in memory" or a file path).
    where: str
    durable: bool

    def push(self, sink: str, kind: Kind, items: list[Event] | list[Summary]) -> None: ...

    def head(self, sink: str, kind: Kind, limit: int) -> list[Event | Summary]: ...

    def drop_head(self, sink: str, kind: Kind, count: int) -> None: ...

    def count(self, sink: str, kind: Kind) -> int: ...


class MemoryQueue:
    where = "in memory"
    durable = False

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], deque[Event | Summary]] = {}

    def push(self, sink: str, kind: Kind, items: list[Event] | list[Summary]) -> None:
        self._items.setdefault((sink, kind), deque()).extend(items)

    def head(self, sink: str, kind: Kind, limit: int) -> list[Event | Summary]:
        items = self._items.get((sink, kind), deque())
        return [items[i] for i in range(min(limit, len(items)))]

    def drop_head(self, sink: str, kind: Kind, count: int) -> None:
        items = self._items.get((sink, kind), deque())
        for _ in range(min(count, len(items))):
            items.popleft()

    def count(self, sink: str, kind: Kind) -> int:
        return len(self._items.get((sink, kind), ()))


class SqliteQueue:
    """The queue as rows of ``pending`` in a SQLite connection someone else owns and commits."""

    durable = True

    def __init__(self, db: sqlite3.Connection, where: str) -> None:
        self._db = db
        self.where = where
        db.executescript(PENDING_SCHEMA)
        self._counts: dict[tuple[str, str], int] = {
            (sink, kind): n
            for sink, kind, n in db.execute("SELECT sink, kind, count(*) FROM pending GROUP BY sink, kind")
        }

    def push(self, sink: str, kind: Kind, items: list[Event] | list[Summary]) -> None:
        self._db.executemany(
            "INSERT INTO pending (sink, kind, body) VALUES (?, ?, ?)", [(sink, kind, encode(i)) for i in items]
        )
        self._counts[(sink, kind)] = self.count(sink, kind) + len(items)

    def head(self, sink: str, kind: Kind, limit: int) -> list[Event | Summary]:
        rows = self._db.execute(
            "SELECT body FROM pending WHERE sink = ? AND kind = ? ORDER BY id LIMIT ?", (sink, kind, limit)
        )
        return [decode(kind, body) for (body,) in rows]

    def drop_head(self, sink: str, kind: Kind, count: int) -> None:
        if count <= 0:
            return
        self._db.execute(
            "DELETE FROM pending WHERE id IN (SELECT id FROM pending WHERE sink = ? AND kind = ? ORDER BY id LIMIT ?)",
            (sink, kind, count),
        )
        self._counts[(sink, kind)] = max(0, self.count(sink, kind) - count)

    def count(self, sink: str, kind: Kind) -> int:
        return self._counts.get((sink, kind), 0)


class ShardedQueue:
    """The retry queue of a sharded detector: each item waits in the state file of its patient's shard.

    So what a sink could not take moves with the shard: the process that takes a shard over (after its
    owner died) sends what the owner had queued. Items are read shard by shard in a fixed order, so
    :meth:`head` and :meth:`drop_head` see the same sequence, as SinkSet needs; the order across shards
    does not matter (every item carries its own time).
    """

    durable = True

    def __init__(self, shards: int, where: str) -> None:
        self._shards = shards
        self.where = where
        self._queues: dict[int, SqliteQueue] = {}

    def add(self, shard: int, queue: SqliteQueue) -> None:
        """Hold the items of ``shard`` in ``queue`` from now on (the shard's state file, when it is taken)."""
        self._queues = dict(sorted({**self._queues, shard: queue}.items()))

    def remove(self, shard: int) -> None:
        """Stop using the queue of ``shard`` (given back: its items stay in its file)."""
        self._queues.pop(shard, None)

    def push(self, sink: str, kind: Kind, items: list[Event] | list[Summary]) -> None:
        by_shard: dict[int, list[Event | Summary]] = {}
        for item in items:
            shard = shard_of(item.patient, self._shards)
            if shard not in self._queues:  # not expected: items come from the streams of served shards
                shard = next(iter(self._queues))
            by_shard.setdefault(shard, []).append(item)
        for shard, part in by_shard.items():
            self._queues[shard].push(sink, kind, part)  # type: ignore[arg-type]

    def head(self, sink: str, kind: Kind, limit: int) -> list[Event | Summary]:
        items: list[Event | Summary] = []
        for queue in self._queues.values():
            if len(items) >= limit:
                break
            if queue.count(sink, kind):
                items += queue.head(sink, kind, limit - len(items))
        return items

    def drop_head(self, sink: str, kind: Kind, count: int) -> None:
        for queue in self._queues.values():
            if count <= 0:
                break
            n = min(count, queue.count(sink, kind))
            queue.drop_head(sink, kind, n)
            count -= n

    def count(self, sink: str, kind: Kind) -> int:
        return sum(queue.count(sink, kind) for queue in self._queues.values())
