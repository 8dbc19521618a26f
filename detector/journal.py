"""The detector's durable state: a journal of received frames, stream checkpoints and the sinks' retry queue.

One SQLite file per MQTT session, ``<state_dir>/detector-<client id>.db``, or with sharding one per shard,
``detector-<client id>-s<k>of<shards>.db`` (WAL mode, ``synchronous=FULL``), used by the service's worker
thread only, with three tables:

``journal``     every data frame as it came from MQTT (topic, payload), in arrival order;
``checkpoint``  each live device's stream state (:mod:`detector.checkpoint`), plus the fingerprint of the
                code and model that wrote it (``meta``);
``pending``     what a sink could not take yet (:class:`detector.sinks.queue.SqliteQueue`).

Writes are group-committed: the worker adds rows inside one open transaction and :meth:`StateStore.commit`
ends it when the inbox runs dry or ``commit_s`` has passed (0.1 s by default), one fsync for many frames.
Only then does the service acknowledge those frames to the broker (MQTT manual acks), so an acknowledged
frame is always on disk, in the journal or folded into a checkpoint, and its events and summaries are
written or queued in ``pending`` in the same transaction or an earlier one.

A checkpoint replaces every device's saved state and empties the journal in one transaction, so the
journal holds only what came after the newest checkpoint: it is bounded by the checkpoint interval.
On start the service loads the checkpoint and replays the journal through the same code; that gives the
state the killed detector had after its last committed frame. Frames the broker then redelivers (those
that were not acknowledged) are dropped as duplicates by sequence number, or processed if they are new.

One detector per file: an exclusive lock (``<file>.lock``), as the collector's spool does. With sharding,
that lock is what makes a process the owner of a shard (docs/scaling.md): the OS releases it when the
process ends, even by SIGKILL, and another process can then take the shard over.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from crampwatch.errors import CrampWatchError
from crampwatch.filelock import LockBusyError, take_lock

from .sinks.queue import SqliteQueue

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    patient TEXT NOT NULL,
    device TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (patient, device)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class StateError(CrampWatchError):
    """The detector's state file cannot be opened, locked or written. ``path`` says which file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"detector state {path}: {problem}")


class StateBusyError(StateError):
    """Another process holds the state file's lock: it is serving that state (a sharded detector waits)."""


class StateStore:
    """The state file of one detector; see the module docstring. Not thread-safe: the worker owns it."""

    def __init__(self, path: Path, *, commit_s: float = 0.1) -> None:
        self.path = path
        self.commit_s = commit_s
        self._lock_file: IO[bytes] | None = self._take_lock(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is fsynced, so an acknowledged frame survives power loss too. Group commit keeps
            # that to a few fsyncs a second however many frames arrive.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self.pending = SqliteQueue(self._db, f"in {path}")
        except sqlite3.DatabaseError as err:
            self._release_lock()
            raise StateError(
                path,
                f"cannot open it as a SQLite database ({err}). If the file is damaged, move it aside "
                "(the streams' state and queued points in it are then lost) and start again.",
            ) from None
        self.journal_rows = self._count("journal")
        self.journal_bytes = 0
        self._last_commit = time.monotonic()

    @staticmethod
    def _take_lock(path: Path) -> IO[bytes]:
        try:
            return take_lock(path)
        except LockBusyError:
            raise StateBusyError(
                path,
                "another detector with the same --client-id is using it; give each detector its own client id "
                "(the broker session and this state belong together)",
            ) from None
        except OSError as err:
            raise StateError(path, f"cannot create it ({err.strerror}); set --state-dir to a writable place") from None

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def _count(self, table: str) -> int:
        (n,) = self._db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed table names
        return int(n)

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    # -- journal -----------------------------------------------------------------------------------

    def append(self, topic: str, payload: bytes) -> None:
        """Journal one frame (in the open transaction: durable at the next :meth:`commit`)."""
        self._begin()
        self._db.execute("INSERT INTO journal (topic, payload) VALUES (?, ?)", (topic, payload))
        self.journal_rows += 1
        self.journal_bytes += len(payload)

    def journal(self) -> Iterator[tuple[str, bytes]]:
        """The journalled frames, oldest first (read in one go: replay writes to the same connection)."""
        rows = self._db.execute("SELECT topic, payload FROM journal ORDER BY id").fetchall()
        return ((str(topic), bytes(payload)) for topic, payload in rows)

    def begin(self) -> None:
        """Open a transaction now, so that what the caller writes next (e.g. queued points) waits for commit."""
        self._begin()

    def commit_due(self) -> bool:
        return self._db.in_transaction and time.monotonic() - self._last_commit >= self.commit_s

    def commit(self) -> None:
        """Make everything written since the last commit durable (one fsync)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._last_commit = time.monotonic()

    # -- checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(self, states: dict[tuple[str, str], bytes], fingerprint: str) -> None:
        """Replace the saved states by ``states`` and empty the journal, atomically, and commit."""
        self._begin()
        self._db.execute("DELETE FROM checkpoint")
        self._db.executemany(
            "INSERT INTO checkpoint (patient, device, state) VALUES (?, ?, ?)",
            [(patient, device, blob) for (patient, device), blob in states.items()],
        )
        self._db.execute("DELETE FROM journal")
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('fingerprint', ?)", (fingerprint,))
        self.commit()
        self.journal_rows = 0
        self.journal_bytes = 0

    def load_checkpoint(self) -> tuple[str | None, dict[tuple[str, str], bytes]]:
        """(fingerprint, saved state per (patient, device)) of the newest checkpoint."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        states = {
            (str(p), str(d)): bytes(blob)
            for p, d, blob in self._db.execute("SELECT patient, device, state FROM checkpoint")
        }
        return (str(row[0]) if row else None), states

    def discard_streams(self) -> None:
        """Forget the saved stream state and the journal (a checkpoint this code cannot use)."""
        self._begin()
        self._db.execute("DELETE FROM checkpoint")
        self._db.execute("DELETE FROM journal")
        self._db.execute("DELETE FROM meta WHERE key = 'fingerprint'")
        self.commit()
        self.journal_rows = 0
        self.journal_bytes = 0

    def close(self) -> None:
        try:
            self.commit()
            self._db.close()
        finally:
            self._release_lock()
