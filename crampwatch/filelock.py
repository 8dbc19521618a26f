"""One process per durable file: an exclusive, non-blocking ``flock`` on ``<file>.lock`` beside it.

The collector's spool and the detector's state file are SQLite databases that exactly one process may
write (two collectors on one spool would send each other's frames; two detectors on one state file would
replay each other's journal). Both take their lock here; each says in its own words what to do when the
file is busy.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


class LockBusyError(Exception):
    """Another process holds the lock (the caller turns this into its own CrampWatchError)."""


def take_lock(path: Path) -> IO[bytes]:
    """Lock ``path`` for this process, creating its folder (mode 0700) and ``<path>.lock``.

    Raises OSError when the folder or lock file cannot be created, :class:`LockBusyError` when another process
    holds the lock. Closing the returned file releases the lock (so does the process ending, even killed).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_file = (path.parent / (path.name + ".lock")).open("ab")
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock_file.close()
        raise LockBusyError(str(path)) from None
    return lock_file


def lock_is_free(path: Path) -> bool:
    """Whether no process holds the lock of ``path`` now; to find out, it is taken and released at once.

    A detector standing by for a shard looks with this before it takes the shard over. Raises OSError as
    :func:`take_lock` does.
    """
    try:
        take_lock(path).close()
    except LockBusyError:
        return False
    return True
