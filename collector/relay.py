"""The collector's one source loop: sources -> publishers -> broker, for ``simulate``, ``replay``, ``lsl`` and ``run``.

    Feed(source, publisher) ... --relay()--> publisher.publish(frame) --> spool --> broker

Everything the commands share happens here, once:

* **Connecting** each feed's client: at once, failing with a clear error if the broker is not there, or
  (``store_and_forward``, the BLE collector) in the background, so that the collector starts and spools
  while the broker is down.
* **Pacing**: with ``speed``, a frame is released when its last sample would exist at ``speed`` x real
  time, counted from its feed's ``start_ns``. Several feeds (files replayed as several devices) run side
  by side, merged by time since each one's start.
* **Back-pressure**: a recorded source is faster than any broker, so publishing waits while more than
  :data:`BACKLOG_FRAMES` frames of a device are not yet acknowledged. A store-and-forward publisher never
  waits: its durable spool is the backlog, and a live radio cannot be paused.
* **Stopping**: Ctrl-C or SIGTERM ask a :class:`~collector.sources.base.LiveSource` to stop; it still
  hands over its buffered frames, which are published and flushed. A second Ctrl-C aborts. A recorded
  source simply stops (Ctrl-C ends the command).
* **The progress bar** (seconds of device time), the **final flush**, and closing every publisher and
  client whatever happened. A flush that times out is an error, except with ``store_and_forward``: the
  frames then stay in the spool for the next run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType

from tqdm import tqdm

from crampwatch.errors import BrokerError, CrampWatchError
from crampwatch.frames import Frame
from crampwatch.framing import merge_by_end_time
from crampwatch.mqtt import connect, connect_in_background

from .publisher import FramePublisher
from .sources.base import LiveSource, Source

log = logging.getLogger(__name__)

#: Frames per device published but not yet acknowledged before a recorded source waits for the broker.
BACKLOG_FRAMES = 2000
#: How long publishing waits for the broker to take the backlog, and the final flush by default.
BROKER_WAIT_S = 600.0


@dataclass(frozen=True, slots=True)
class Feed:
    """One device: its source, the publisher of its topics, and the device time its source starts at
    (pacing and progress count from there)."""

    source: Source
    publisher: FramePublisher
    start_ns: int = 0


def relay(
    feeds: Sequence[Feed],
    *,
    speed: float | None = None,
    progress_s: float | None = None,
    progress_label: str = "",
    flush_timeout_s: float = BROKER_WAIT_S,
    store_and_forward: bool = False,
    before_close: Callable[[], None] | None = None,
) -> None:
    """Publish every frame of every feed, flush, and close the publishers and their clients.

    Args:
        feeds: the devices; each publisher's client is connected here (and disconnected at the end).
        speed: x real time (None: as fast as the broker takes the frames; live sources pace themselves).
        progress_s, progress_label: show a progress bar of this many seconds of device time (None: none).
        flush_timeout_s: how long the final flush waits for the broker.
        store_and_forward: the publishers spool to disk: connect in the background, never wait for the
            broker, keep going if a frame cannot be stored, and leave undelivered frames in the spool.
        before_close: called after the flush (or a failure), before the publishers close (final status).
    """
    bar = tqdm(total=round(progress_s or 0), unit="s", desc=progress_label, disable=progress_s is None)
    try:
        for feed in feeds:
            if store_and_forward:
                connect_in_background(feed.publisher.client)
            else:
                connect(feed.publisher.client)
        with _stop_on_signals([f.source for f in feeds if isinstance(f.source, LiveSource)]):
            done_s = 0
            for i, frame in _paced(feeds, speed):
                publisher = feeds[i].publisher
                if store_and_forward:
                    _publish_durably(publisher, frame)
                    continue
                publisher.wait_until_below(BACKLOG_FRAMES, timeout_s=BROKER_WAIT_S)
                publisher.publish(frame)
                t = int((frame.t0_ns + frame.duration_ns - feeds[i].start_ns) / 1e9)
                if t > done_s:
                    bar.update(t - done_s)
                    done_s = t
        bar.close()
        for feed in feeds:
            try:
                feed.publisher.flush(timeout_s=flush_timeout_s)
            except BrokerError as err:
                if not store_and_forward:
                    raise
                log.warning("%s", err)
    finally:
        bar.close()
        if before_close is not None:
            before_close()
        for feed in feeds:
            feed.publisher.close()
            feed.publisher.client.loop_stop()
            feed.publisher.client.disconnect()


def _paced(feeds: Sequence[Feed], speed: float | None) -> Iterator[tuple[int, Frame]]:
    """``(feed index, frame)`` by end time since each feed's start, released at ``speed`` x real time."""
    merged = merge_by_end_time([f.source.frames() for f in feeds], start_ns=[f.start_ns for f in feeds])
    wall0 = time.monotonic()
    for i, frame in merged:
        if speed:
            due = wall0 + (frame.t0_ns + frame.duration_ns - feeds[i].start_ns) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield i, frame


def _publish_durably(publisher: FramePublisher, frame: Frame) -> None:
    """An overnight collector outlives a frame it cannot store (a full or failing disk): log and go on."""
    try:
        publisher.publish(frame)
    except CrampWatchError as err:
        log.error("could not store frame %s seq %d: %s", frame.kind, frame.seq, err)


@contextlib.contextmanager
def _stop_on_signals(live: Sequence[LiveSource]) -> Iterator[None]:
    """While publishing, Ctrl-C and SIGTERM stop the live sources (their last frames still go out)."""
    if not live or threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (tests run commands in others)
        return
    stopping: list[bool] = []

    def stop(signum: int, _: FrameType | None) -> None:
        if stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: give up on the last frames
        stopping.append(True)
        log.info("%s: stopping the stream", signal.Signals(signum).name)
        for source in live:
            source.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
