"""Durable store-and-forward spool: every frame is on disk before it goes to the broker.

Why: a wearable streams all night, but the broker, the network or the collector itself may not be there
all night. paho keeps unacknowledged QoS 1 messages only in memory, so a collector that is killed,
rebooted or OOM-killed loses them. The spool is a SQLite database in WAL mode; the publisher
(:mod:`collector.publisher`) appends a frame here *before* handing it to paho and deletes it only after
the broker's PUBACK (plus a save barrier, see the publisher) or, with ``confirm = "detector"``, once the
detector confirms it journalled the frame (then the broker need not save anything; docs/reliability.md).
On restart every frame still in the spool is sent again, oldest first, so nothing that reached the spool
is lost; duplicates are possible and are dropped by the detector, which discards sequence numbers it has
already seen.

What is stored per frame: the encoded wire bytes, the topic, the stream's sequence number and the time
it was spooled. Rows get strictly increasing ids (``AUTOINCREMENT``, never reused), and that id order is
the publish order, which keeps every stream in order. A second table remembers the last sequence number
spooled per topic, so a restarted collector continues each stream's numbering instead of starting again
at 0 (which the detector would drop as duplicates).

Disk bound policy (``--spool-max-mb``): the stored frames (payload + topic + a fixed per-row overhead)
may use at most ``max_bytes``. Crossing 80 % logs a warning once (re-armed below 70 %); at the bound the
**oldest** frames are dropped to make room, with an error log and the ``dropped_*`` counters. Oldest,
not newest, because the newest data is what a live cramp alert needs when the broker comes back, and a
dropped block at the start of the backlog shows up at the detector as an ordinary, flagged gap. The
SQLite file itself is not shrunk on every delete (freed pages are reused); when the spool has drained
and more than 8 MB are free it is compacted (incremental vacuum + WAL truncate).

Durability (``--spool-sync``): ``normal`` (default) survives a crash or kill of the collector process;
``full`` also survives power loss and kernel panics at the cost of one fsync per frame (measured on the
development VM: ~7,400 vs ~220 frames/s; a BLE wearable produces 10-30 frames/s).

One collector process per spool file: the spool takes an exclusive lock (``<file>.lock``) so two
collectors can never send and delete each other's frames.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal

from crampwatch.errors import CrampWatchError
from crampwatch.filelock import LockBusyError, take_lock

log = logging.getLogger(__name__)

SyncMode = Literal["normal", "full"]

#: Bytes counted per row on top of payload and topic (row header, index entry, seq, time).
ROW_OVERHEAD: Final = 64
WARN_FRACTION: Final = 0.8
REARM_FRACTION: Final = 0.7
DROP_LOG_INTERVAL_S: Final = 60.0
COMPACT_FREE_BYTES: Final = 8 * 1024 * 1024
COMPACT_INTERVAL_S: Final = 60.0
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    spooled_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
    topic TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
"""


class SpoolError(CrampWatchError):
    """The spool file cannot be opened, written or locked. ``path`` says which file."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"spool {path}: {problem}")


@dataclass(frozen=True, slots=True)
class SpoolRow:
    """One stored frame."""

    id: int
    topic: str
    seq: int
    payload: bytes

    @property
    def size(self) -> int:
        return _row_size(self.topic, len(self.payload))


@dataclass
class SpoolStats:
    """Counters since the spool was opened (``dropped_*`` = lost to the disk bound)."""

    appended: int = 0
    deleted: int = 0
    dropped_frames: int = 0
    dropped_bytes: int = 0


def _row_size(topic: str, payload_len: int) -> int:
    return payload_len + len(topic) + ROW_OVERHEAD


class Spool:
    """A SQLite-backed FIFO of encoded frames, safe to use from several threads of one process.

    ``path=None`` gives an in-memory spool (same behaviour, nothing survives the process), which keeps
    callers that do not configure a spool working as before.

    Example::

        spool = Spool(Path("/var/lib/crampwatch/spool.db"), max_bytes=512_000_000)
        row_id = spool.append("cramp/v1/p1/dev/emg", 17, payload)
        for row in spool.after(0, limit=100): ...
        spool.delete([row_id])
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        max_bytes: int | None = None,
        sync: SyncMode = "normal",
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise SpoolError(str(path), f"the size bound must be positive, got {max_bytes} bytes")
        if sync not in ("normal", "full"):
            raise SpoolError(str(path), f"sync mode must be 'normal' or 'full', not {sync!r}")
        self.path = Path(path) if path is not None else None
        self.max_bytes = max_bytes
        self.stats = SpoolStats()
        self._lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None
        self._warned = False
        self._last_drop_log = 0.0
        self._last_compact = 0.0
        self._last_seq: dict[str, int] = {}
        name = str(self.path) if self.path is not None else ":memory:"
        if self.path is not None:
            self._lock_file = self._take_lock(self.path)
        try:
            self._db = self._open(name, sync)
        except sqlite3.DatabaseError as err:
            self._release_lock()
            raise SpoolError(
                name,
                f"cannot open it as a SQLite database ({err}). If the file is damaged, move it aside "
                "(its frames are then lost) and start again.",
            ) from None
        #: Number of frames stored, their counted size, and the highest row id ever used.
        self.count, self.bytes, self.last_id = self._totals()
        if self.count:
            log.warning(
                "spool %s holds %d frame(s) (%.1f MB) from an earlier run; they are sent first",
                name,
                self.count,
                self.bytes / 1e6,
            )

    # -- opening -----------------------------------------------------------------------------------

    @staticmethod
    def _take_lock(path: Path) -> IO[bytes]:
        try:
            return take_lock(path)
        except LockBusyError:
            raise SpoolError(
                str(path),
                "in use by another collector process; give each collector (one per device) its own "
                "--spool-path, or stop the other one",
            ) from None
        except OSError as err:
            raise SpoolError(str(path), f"cannot create it ({err.strerror}); choose a writable --spool-path") from None

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    @staticmethod
    def _open(name: str, sync: SyncMode) -> sqlite3.Connection:
        db = sqlite3.connect(name, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new, empty file
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {sync.upper()}")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            db.close()
            raise sqlite3.DatabaseError(f"spool schema version {version} is newer than this collector's")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return db

    def _totals(self) -> tuple[int, int, int]:
        with self._lock:
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload) + LENGTH(topic)), 0) FROM frames"
            ).fetchone()
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'frames'").fetchone()
            for topic, last_seq in self._db.execute("SELECT topic, last_seq FROM streams"):
                self._last_seq[topic] = int(last_seq)
        return int(count), int(size) + ROW_OVERHEAD * int(count), int(row[0]) if row else 0

    # -- writing -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (caller holds ``_lock``); SQLite errors become SpoolError with a hint."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            raise SpoolError(
                str(self.path or ":memory:"), f"{what} failed ({err}); is the disk full or read-only?"
            ) from None

    def append(self, topic: str, seq: int, payload: bytes) -> int:
        """Store one frame durably and return its row id. Drops the oldest frames if the bound is hit."""
        size = _row_size(topic, len(payload))
        if self.max_bytes is not None and size > self.max_bytes:
            raise SpoolError(
                str(self.path),
                f"a {size}-byte frame does not fit in a {self.max_bytes}-byte spool; raise --spool-max-mb",
            )
        dropped: list[tuple[int, int]] = []
        with self._lock:
            with self._write("storing a frame") as db:
                if self.max_bytes is not None and self.bytes + size > self.max_bytes:
                    dropped = self._drop_oldest(db, self.bytes + size - self.max_bytes)
                cursor = db.execute(
                    "INSERT INTO frames (topic, seq, payload, spooled_ns) VALUES (?, ?, ?, ?)",
                    (topic, seq, payload, time.time_ns()),
                )
                row_id = int(cursor.lastrowid or 0)
                if seq > self._last_seq.get(topic, -1):
                    db.execute(
                        "INSERT INTO streams (topic, last_seq) VALUES (?, ?) "
                        "ON CONFLICT (topic) DO UPDATE SET last_seq = excluded.last_seq",
                        (topic, seq),
                    )
            # Committed: now the counters may change.
            self.count += 1 - len(dropped)
            self.bytes += size - sum(s for _, s in dropped)
            self.last_id = row_id
            self._last_seq[topic] = max(seq, self._last_seq.get(topic, -1))
            self.stats.appended += 1
        if dropped:
            self._report_drop(len(dropped), sum(s for _, s in dropped))
        self._check_fill()
        return row_id

    def _drop_oldest(self, db: sqlite3.Connection, need: int) -> list[tuple[int, int]]:
        victims: list[tuple[int, int]] = []
        freed = 0
        after = 0
        while freed < need:
            batch = db.execute(
                "SELECT id, LENGTH(payload) + LENGTH(topic) FROM frames WHERE id > ? ORDER BY id LIMIT 256", (after,)
            ).fetchall()
            if not batch:
                break
            for row_id, raw in batch:
                victims.append((int(row_id), int(raw) + ROW_OVERHEAD))
                freed += int(raw) + ROW_OVERHEAD
                after = int(row_id)
                if freed >= need:
                    break
        db.execute("DELETE FROM frames WHERE id <= ?", (after,))
        return victims

    def _report_drop(self, frames: int, size: int) -> None:
        self.stats.dropped_frames += frames
        self.stats.dropped_bytes += size
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.error(
                "spool %s is full (%.0f MB): dropping the OLDEST unsent data to keep recording "
                "(%d frame(s), %.1f MB lost so far). The broker has not acknowledged data for a long time: "
                "check the network and the broker, or raise --spool-max-mb.",
                self.path or ":memory:",
                (self.max_bytes or 0) / 1e6,
                self.stats.dropped_frames,
                self.stats.dropped_bytes / 1e6,
            )

    def _check_fill(self) -> None:
        if self.max_bytes is None:
            return
        fill = self.bytes / self.max_bytes
        if not self._warned and fill >= WARN_FRACTION:
            self._warned = True
            log.warning(
                "spool %s is %.0f %% full (%.1f of %.0f MB): frames are not reaching the broker. "
                "At 100 %% the oldest frames are dropped. Check the network and the broker.",
                self.path or ":memory:",
                100 * fill,
                self.bytes / 1e6,
                self.max_bytes / 1e6,
            )
        elif self._warned and fill < REARM_FRACTION:
            self._warned = False
            log.info("spool %s is draining: %.0f %% full", self.path or ":memory:", 100 * fill)

    def delete(self, ids: Iterable[int]) -> int:
        """Forget frames the broker has acknowledged; unknown ids (already dropped) are ignored."""
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        with self._lock:
            with self._write("deleting acknowledged frames") as db:
                ids_json = json.dumps(wanted)
                row = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload) + LENGTH(topic)), 0) FROM frames "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (ids_json,),
                ).fetchone()
                db.execute("DELETE FROM frames WHERE id IN (SELECT value FROM json_each(?))", (ids_json,))
                removed = int(row[0])
                freed = int(row[1]) + ROW_OVERHEAD * removed
            self.count -= removed
            self.bytes -= freed
            self.stats.deleted += removed
        self._check_fill()
        if self.count == 0:
            self._maybe_compact()
        return removed

    def _maybe_compact(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._last_compact < COMPACT_INTERVAL_S:
            return
        self._last_compact = now
        with self._lock:
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
            page = self._db.execute("PRAGMA page_size").fetchone()[0]
            if int(free) * int(page) < COMPACT_FREE_BYTES:
                return
            try:
                self._db.execute("PRAGMA incremental_vacuum")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:  # compaction is an optimisation; never fail the stream for it
                log.warning("spool %s: compaction failed (%s)", self.path, err)
                return
        log.info("spool %s drained; compacted %.1f MB of free space", self.path, int(free) * int(page) / 1e6)

    # -- reading -----------------------------------------------------------------------------------

    def after(self, row_id: int, limit: int) -> list[SpoolRow]:
        """Up to ``limit`` frames with an id greater than ``row_id``, oldest first."""
        if limit <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, seq, payload FROM frames WHERE id > ? ORDER BY id LIMIT ?", (row_id, limit)
            ).fetchall()
        return [SpoolRow(int(i), str(t), int(s), bytes(p)) for i, t, s, p in rows]

    def get(self, ids: Iterable[int]) -> list[SpoolRow]:
        """The frames with these ids that are still stored, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, seq, payload FROM frames WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(sorted(set(ids))),),
            ).fetchall()
        return [SpoolRow(int(i), str(t), int(s), bytes(p)) for i, t, s, p in rows]

    def last_seq(self, topic: str) -> int | None:
        """The highest sequence number ever spooled on ``topic`` (kept after delivery), or None."""
        return self._last_seq.get(topic)

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release_lock()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
