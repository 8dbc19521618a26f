"""A BLE wearable as a :class:`~collector.sources.base.LiveSource`, so ``run`` shares the one source loop.

bleak needs an asyncio event loop, so the :class:`~collector.ble.runner.BleRunner` (scan, connect,
stream, reconnect) runs on one in a background thread, and :meth:`BleSource.frames` hands its frames to
the caller (the source loop, which spools them). The source is the runner's
:class:`~collector.ble.runner.FrameSink`. Durability is as before:

* The hand-off holds at most :data:`HANDOFF_FRAMES` frames. The runner's worker hands frames over off the
  event loop and waits while the hand-off is full, as it waited for the spool before, so a slow spool
  (``--spool-sync full``) backs up into the runner's own bounded notification queue (counted as
  ``queue_drops``), never into memory without bound.
* :meth:`BleSource.stop` (Ctrl-C, SIGTERM) stops the runner, which hands over its buffered samples
  *without* the end-of-stream flag: a restarted collector continues the same night. Only
  ``duration_s`` ends the night (end-of-stream flags on the last frames).
* Frame numbers continue from the spool (``next_seq``, asked of the publisher).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Final

from crampwatch.frames import Frame, StreamKind

from .runner import BleRunner, FrameSink

#: Frames handed over by the runner and not yet taken by the source loop, at most.
HANDOFF_FRAMES: Final = 256


class BleSource:
    """Frames from a BLE wearable until :meth:`stop` or ``duration_s`` (see the module docstring).

    Args:
        make_runner: builds the runner around its sink (this source).
        next_seq: where each stream's numbering continues (``FramePublisher.next_seq``).
        duration_s: end the night after this long (None: until stopped).
    """

    def __init__(
        self,
        make_runner: Callable[[FrameSink], BleRunner],
        *,
        next_seq: Callable[[StreamKind], int],
        duration_s: float | None = None,
    ) -> None:
        self._next_seq = next_seq
        self.duration_s = duration_s
        self._handoff: queue.Queue[Frame | None] = queue.Queue(HANDOFF_FRAMES)
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.runner = make_runner(self)

    # -- the runner's sink (called in the runner's thread) -----------------------------------------

    def next_seq(self, kind: StreamKind) -> int:
        return self._next_seq(kind)

    def publish(self, frame: Frame) -> None:
        self._handoff.put(frame)  # waits while the source loop is behind (see the module docstring)

    # -- the source --------------------------------------------------------------------------------

    def stop(self) -> None:
        """End the stream (from any thread or a signal handler); :meth:`frames` then returns."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(stop.set)

    def frames(self) -> Iterator[Frame]:
        thread = threading.Thread(target=self._run, name="ble-runner", daemon=True)
        thread.start()
        try:
            while (frame := self._handoff.get()) is not None:
                yield frame
        finally:
            self.stop()
            while thread.is_alive():  # the caller gave up early: keep the hand-off from blocking the runner
                with contextlib.suppress(queue.Empty):
                    self._handoff.get(timeout=0.1)
            thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # re-raised in the caller's thread by frames()
            self._error = err
        finally:
            self._handoff.put(None)

    async def _main(self) -> None:
        # _stop before _loop, and the request checked after both: a stop() at any moment is seen.
        self._stop = stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested.is_set():
            stop.set()
        await self.runner.run(stop, duration_s=self.duration_s)
