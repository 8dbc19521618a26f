"""``cramp-detector serve``: frames from MQTT -> one pipeline per device -> sinks.

paho's network thread only enqueues (topic, payload); one worker thread decodes, runs the pipelines and
writes the sinks, so a slow sink never blocks the network loop and the order of each stream is kept.

Bad input never stops the service (anyone who can publish on the broker can send it):

* The edge. A frame is refused when its topic's ids are not valid ids (:func:`crampwatch.topics.check_id`),
  when it does not decode (:mod:`crampwatch.wire`), when it breaks a physical limit
  (:mod:`crampwatch.limits`, checked by :class:`~detector.stream.DeviceStreams` before any state
  changes) or does not fit its stream (units, a rate change), and when ``max_devices`` devices are
  streaming already. A refused frame goes to the dead letter (file and ``<prefix>/dead-letter``) with the
  reason, is counted per device (:attr:`ServiceStats.rejected_by_device`), is logged (rate-limited, with
  running counts) and never reaches a pipeline.
* Anything else that goes wrong with one frame (a bug, a library error no check foresaw) is caught in the
  worker, logged with the device, dead-lettered with the reason and counted in
  :attr:`ServiceStats.internal_errors`; that device's state is finished and dropped, since it may be
  broken, and its next frame starts afresh. If the worker thread ends anyway, :meth:`run_forever`
  returns 1, so ``serve`` exits non-zero and systemd or compose restarts it.
* Memory. At most ``max_devices`` devices are kept; one that has sent nothing for ``device_idle_s`` is
  finished (its events are written) and freed. Frames from the network are at most
  :data:`~crampwatch.limits.MAX_LIVE_FRAME_S` long and hold at most
  :data:`~crampwatch.limits.MAX_LIVE_FRAME_VALUES` samples x channels.

For dashboards and alerts the worker also writes, to InfluxDB sinks, a heartbeat per recording device every
``heartbeat_s`` of wall time (data received or not, seconds silent, lag, rejected frames), and each collector
status message it receives on ``<prefix>/+/+/status`` (battery, RSSI, spool backlog, losses).

Durability (docs/reliability.md). Frames are acknowledged to the broker only once they are on disk: the
worker journals each data frame in the state file (:mod:`detector.journal`) before handling it, and after
a group commit acknowledges the frames it covers (paho manual acks). Every ``checkpoint_s`` the streams'
state is checkpointed and the journal emptied. On start the checkpoint is loaded and the journal replayed
before any new frame is taken, so a detector killed at any moment resumes with the state it had, and the
events it re-emits are the same events at the same times (InfluxDB overwrites the same points; on MQTT
they carry the same ``id``). What a sink cannot take waits in the same file (:mod:`detector.sinks.queue`)
and is retried every ``sink_retry_s``.

Sharding (docs/scaling.md). The shard is what is owned: its MQTT session, its state file (journal,
checkpoints, queue) and that file's lock. A process serves the shards whose locks it holds; with
``standby_for`` it takes over, state first and session last, the shards whose process died.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from crampwatch import wire
from crampwatch.errors import BrokerError, ConfigError, CrampWatchError, FrameError, SinkError, StreamError
from crampwatch.filelock import lock_is_free
from crampwatch.frames import Frame, StreamKind
from crampwatch.limits import MAX_LIVE_FRAME_S, MAX_LIVE_FRAME_VALUES
from crampwatch.mqtt import connect, make_client, with_username
from crampwatch.settings import default_state_dir
from crampwatch.topics import (
    StreamTopic,
    check_id,
    confirm_topic,
    data_subscriptions,
    device_of_data_topic,
    format_shard_set,
    parse_shard,
    shard_of,
    shard_prefix,
    status_topic,
)

from . import checkpoint
from .config import DetectorSettings
from .events import Event, Heartbeat
from .journal import StateBusyError, StateStore
from .model import Model
from .pipeline import PipelineOutput
from .sinks import DeadLetterFile, InfluxSink, JsonlSink, MqttEventSink, Sink, SinkSet
from .sinks.base import KINDS
from .sinks.mqtt import dead_letter_publisher
from .sinks.queue import ShardedQueue
from .stream import DeviceStreams

log = logging.getLogger(__name__)

#: A device silent this long is no longer "recording": its heartbeats stop.
RECORDING_GIVE_UP_S = 12 * 3600
#: How often the worker looks for idle devices to evict (seconds of wall time).
EVICT_EVERY_S = 5.0
#: Key under which rejected frames are counted when their topic's ids are not valid ids.
INVALID_ID_KEY = "(invalid id)"
#: Key under which rejected frames are counted once ``max_devices`` other keys are counted already.
OTHER_KEY = "(other)"
#: Most MQTT messages the worker takes from its queue for one round (one model call). Under load the
#: queue holds many devices' frames and the round scores all their windows at once; the bound keeps one
#: round, and so the delay of the first frame in it, short.
MAX_BATCH_MESSAGES = 4000
#: An MQTT message as the worker takes it: topic, payload, the client that received it (its ack goes back
#: there), message id and QoS.
Message = tuple[str, bytes, mqtt.Client, int, int]
#: A dead-letter record keeps at most this many characters of a topic (a topic can be 64 KiB long).
MAX_TOPIC_SHOWN = 200
#: A checkpoint is taken early once the journal holds this many payload bytes (a burst of many devices).
MAX_JOURNAL_BYTES = 64 * 1024 * 1024
#: A device: its device prefix (with the shard level under sharding), patient and device id.
DeviceKey = tuple[str, str, str]


def state_path(settings: DetectorSettings, shard: int | None = None) -> Path:
    """The state file of one MQTT session: ``<state_dir>/detector-<client id>.db``, or shard k's.

    With sharding the shard is the unit that moves between processes, with its session
    (``<client id>-s<k>``), so it has its own file, ``detector-<client id>-s<k>of<shards>.db``: whoever
    holds that file's lock serves the shard, and finds there its streams' checkpoints, its journal and
    its queued points. The shard count is in the name because the same patient is in another shard
    under another count.
    """
    directory = settings.state_dir.expanduser() if settings.state_dir is not None else default_state_dir()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", settings.client_id)
    if shard is not None:
        name += f"-s{shard}of{settings.shards}"
    return directory / f"detector-{name}.db"


@dataclass
class ServiceStats:
    messages: int = 0
    rejected_frames: int = 0
    #: Rejected frames per "patient/device" (INVALID_ID_KEY, OTHER_KEY beyond max_devices keys).
    rejected_by_device: dict[str, int] = field(default_factory=dict)
    #: Unexpected exceptions survived while handling a frame (each one a bug to look at).
    internal_errors: int = 0
    events: int = 0  # final events
    open_events: int = 0  # events sent in state "open" or "cancelled" (live, before their final event)
    evicted_devices: int = 0
    finished_devices: set[tuple[str, str]] = field(default_factory=set)


class RateLimitedLog:
    """At most ``burst`` lines per ``interval_s``; the next line that passes says how many were held back.

    Why: a flood of bad frames (or one broken device sending 4 a second all night) must not turn the log
    into the flood; the running counts in each line still tell how much happened.
    """

    def __init__(self, logger: logging.Logger, *, interval_s: float = 60.0, burst: int = 10) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.burst = burst
        self._window_start = -float("inf")
        self._in_window = 0
        self.suppressed = 0

    def log(self, level: int, msg: str, *args: object, exc_info: BaseException | None = None) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.interval_s:
            self._window_start, self._in_window = now, 0
        if self._in_window >= self.burst:
            self.suppressed += 1
            return
        self._in_window += 1
        if self.suppressed:
            msg += " (%d similar lines held back before this one)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self.logger.log(level, msg, *args, exc_info=exc_info)


class DetectorService:
    def __init__(
        self, settings: DetectorSettings, model: Model, *, sinks: list[Sink] | None = None, heartbeat_s: float = 10.0
    ) -> None:
        self.settings = settings
        self._shards = settings.shard_set  # with sharding: the shards this process serves
        self.heartbeat_s = heartbeat_s
        self._last_data: dict[tuple[str, str], float] = {}  # wall time of the last frame per device
        self._newest_ns: dict[tuple[str, str], int] = {}  # device time of the newest summary
        self._beat_data: set[tuple[str, str]] = set()  # devices that sent data since the last beat
        self.model = model
        self.stats = ServiceStats()
        self.devices: dict[tuple[str, str], DeviceStreams] = {}
        self._last_seen: OrderedDict[tuple[str, str], float] = OrderedDict()  # oldest first, for eviction
        self._next_eviction = 0.0
        self._reject_log = RateLimitedLog(log)
        self._error_log = RateLimitedLog(log, burst=5)
        self.worker_error: BaseException | None = None  # why the worker thread ended, if it did by itself
        self.events_log: deque[Event] = deque(maxlen=10_000)  # recent final events, for the demo and tests
        self._unwritten = PipelineOutput()  # what this round completed, written at its end
        self._just_finished: list[tuple[str, str]] = []  # devices whose streams ended this round
        self._touched: dict[tuple[str, str], DeviceStreams] = {}  # devices that took a frame this round
        # topic, payload, the client that received it (its ack goes back there), mid, qos
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        # Durable state, opened by start(): frames taken but not yet acknowledged wait for its next commit.
        # One file without sharding (key None); with sharding one per shard served, each under its lock.
        self.states: dict[int | None, StateStore] = {}
        self._queue: ShardedQueue | None = None  # with sharding: the sinks' retry queue, in the shards' files
        self._next_poll = 0.0  # when to look at the shard locks again (own shards held elsewhere, standby)
        self._seen_free: set[int] = set()  # standby shards whose lock was free at the last look
        self._requests: queue.Queue[tuple[frozenset[int], Future[set[int]]]] = queue.Queue()  # take_shards
        self._worker: threading.Thread | None = None
        self._unacked: list[tuple[mqtt.Client, int, int]] = []
        # Confirmations (crampwatch.wire): the newest journalled seq per stream of each device, not yet
        # committed / committed and not yet confirmed, the client its frames came on, and when the device
        # was last confirmed (oldest first, to bound the table).
        self._journalled: dict[DeviceKey, dict[StreamKind, int]] = {}
        self._to_confirm: dict[DeviceKey, dict[StreamKind, int]] = {}
        self._confirm_via: dict[DeviceKey, mqtt.Client] = {}
        self._last_confirm: OrderedDict[DeviceKey, float] = OrderedDict()
        self.confirmations = 0
        self._next_checkpoint = 0.0
        self._replaying = False
        self._sink_log = RateLimitedLog(log, burst=2)
        self._stop = threading.Event()
        self._worker_done = threading.Event()
        self._idle = threading.Condition()
        self._subscribed = threading.Event()
        # With sharding, each shard has its own persistent session (shard_clients, client id
        # <client_id>-s<k>), so whichever process serves a shard next resumes it with the frames the broker
        # kept meanwhile; this client then only publishes, under an id of its own and with no session.
        main_id, expiry = settings.client_id, settings.session_expiry_s
        if settings.shards:
            main_id, expiry = f"{settings.client_id}-{socket.gethostname()}-{os.getpid()}", 0
        self.client = make_client(
            settings.mqtt_url, main_id, session_expiry_s=expiry, access=settings.mqtt_access, manual_ack=True
        )
        self.shard_clients: dict[int, mqtt.Client] = {}
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        # With event publishing on, dead letters are also published, so an alert can fire when one happens.
        mirror = dead_letter_publisher(self.client, settings.topic_prefix) if settings.publish_events else None
        self.sinks = SinkSet(
            sinks if sinks is not None else self._default_sinks(),
            dead_letter=DeadLetterFile(settings.dead_letter_file, mirror=mirror),
            retry_s=settings.sink_retry_s,
        )

    def _default_sinks(self) -> list[Sink]:
        s = self.settings
        sinks: list[Sink] = []
        if s.influx_url:
            sinks.append(InfluxSink(s.influx_url, s.influx_token, s.influx_org, s.influx_bucket))
        else:
            log.info("no InfluxDB configured (--influx-url); writing events to %s", s.events_file)
            sinks.append(JsonlSink(s.events_file))
        if s.publish_events:
            sinks.append(MqttEventSink(self.client, s.topic_prefix))
        return sinks

    # -- MQTT callbacks (paho's thread): only enqueue ----------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            return
        if self.settings.shards:
            self._subscribed.set()  # the shard clients subscribe (take_shards)
            return
        client.subscribe([(topic, 1) for topic in self.subscriptions()])

    def subscriptions(self) -> list[str]:
        """Data and status wildcards: under the prefix, or with sharding under each shard this process owns."""
        prefix = self.settings.topic_prefix
        prefixes = [shard_prefix(prefix, k) for k in sorted(self._shards)] if self.settings.shards else [prefix]
        return [t for p in prefixes for t in (*data_subscriptions(p), status_topic(p, "+", "+"))]

    def take_shards(self, shards: Iterable[int], timeout_s: float = 120.0) -> set[int]:
        """Serve those of ``shards`` that no process serves (their lock is free); returns the ones taken.

        For each: take its lock, open its state file, resume its streams (checkpoint, then journal), and only
        then resume its persistent MQTT session, so the frames the broker kept or redelivers continue those
        streams (repeats are dropped by sequence number). Done by the worker thread once it runs (the
        streams are its own); from another thread this waits for it. The standby poll
        (``standby_for``) calls the same code.
        """
        wanted = frozenset(shards)
        if self._worker is None or threading.current_thread() is self._worker:
            return self._take_free_shards(wanted, "asked to")
        done: Future[set[int]] = Future()
        self._requests.put((wanted, done))
        return done.result(timeout_s)

    def _take_free_shards(self, shards: Iterable[int], why: str) -> set[int]:
        n = self.settings.shards
        taken: set[int] = set()
        for k in sorted(set(shards) - set(self.shard_clients)):
            if not 0 <= k < n:
                raise ConfigError(f"shard {k} does not exist: shards is {n}, so shards are 0-{n - 1}")
            try:
                state = StateStore(state_path(self.settings, k))
            except StateBusyError:
                continue  # another process serves it
            assert self._queue is not None
            self.states[k] = state
            self._queue.add(k, state.pending)
            self._shards = self._shards | {k}  # before its journal is replayed and its session resumes
            try:
                self._resume(state)
                self._connect_shard(k)
            except BaseException:
                self._release_shard(k)
                raise
            taken.add(k)
            queued = sum(state.pending.count(sink.name, kind) for sink in self.sinks.sinks for kind in KINDS)
            log.info(
                "serving shard %d of %d (%s; session %s-s%d, state %s%s)",
                k,
                n,
                why,
                self.settings.client_id,
                k,
                state.path,
                f"; {queued} events and summaries queued there for a sink are sent first" if queued else "",
            )
        return taken

    def _release_shard(self, k: int) -> None:
        """Give shard ``k`` back after a failed take-over: its streams stay in its file for the next owner."""
        for key in [key for key in self.devices if shard_of(key[0], self.settings.shards) == k]:
            self.devices.pop(key)
            self._last_seen.pop(key, None)
            self._forget(key)
        self._shards = self._shards - {k}
        client = self.shard_clients.pop(k, None)
        if client is not None:
            client.loop_stop()
            client.disconnect()
        state = self.states.pop(k, None)
        if state is not None:
            state.close()  # releases the lock
        if self._queue is not None:
            self._queue.remove(k)

    def _connect_shard(self, k: int) -> None:
        """Resume shard ``k``'s persistent session and wait for the broker's SUBACK."""
        at = shard_prefix(self.settings.topic_prefix, k)
        client_id = f"{self.settings.client_id}-s{k}"
        # Where the broker makes every client id its account name, the session of shard k must be an account.
        url = (
            with_username(self.settings.mqtt_url, client_id) if self.settings.shard_accounts else self.settings.mqtt_url
        )
        client = make_client(
            url,
            client_id,
            session_expiry_s=self.settings.session_expiry_s,
            access=self.settings.mqtt_access,
            manual_ack=True,
        )
        done = threading.Event()
        topics = [(t, 1) for t in (*data_subscriptions(at), status_topic(at, "+", "+"))]

        def on_connect(c: mqtt.Client, u: object, f: object, why: object, p: object) -> None:
            if not getattr(why, "is_failure", False):
                c.subscribe(topics)

        client.on_connect = on_connect
        client.on_subscribe = lambda *_: done.set()
        client.on_message = self._on_message
        self.shard_clients[k] = client
        connect(client)
        if not done.wait(10):
            raise BrokerError(f"the broker did not confirm the subscriptions of shard {k} within 10 s")

    def _poll_shards(self) -> None:
        """Take the wanted shards nobody serves: own ones at once, standby ones once free at two looks in a row.

        Two looks, ``standby_poll_s`` apart, because a lock is also free while its own process is starting
        (or restarting under its supervisor): that process should get its shards back, not a standby.
        """
        self._next_poll = time.monotonic() + self.settings.standby_poll_s
        own = self.settings.shard_set - set(self.shard_clients)
        if own:
            self._take_trying(own, "one of its own shards, free again")
        standby = self.settings.standby_set - set(self.shard_clients) - self.settings.shard_set
        free = {k for k in standby if lock_is_free(state_path(self.settings, k))}
        ready, self._seen_free = free & self._seen_free, free - self._seen_free
        if ready:
            log.warning(
                "shard(s) %s of %d: nobody has served them for %g s (their locks in %s are free): taking them "
                "over (standby_for %s)",
                format_shard_set(ready),
                self.settings.shards,
                self.settings.standby_poll_s,
                state_path(self.settings, min(ready)).parent,
                self.settings.standby_for,
            )
            self._take_trying(ready, "taken over from a process that is gone")

    def _take_trying(self, shards: set[int] | frozenset[int], why: str) -> None:
        """Take ``shards`` if free; a failure (the broker is away) is logged and tried at the next look."""
        try:
            self._take_free_shards(shards, why)
        except CrampWatchError as err:
            log.error(
                "could not take shard(s) %s: %s; trying again in %g s",
                format_shard_set(shards),
                err,
                self.settings.standby_poll_s,
            )

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Not acknowledged here (manual acks): the worker does, once the frame is on disk.
        self._inbox.put((msg.topic, bytes(msg.payload), client, msg.mid, msg.qos))

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Connect, wait until the broker confirms the subscriptions, and start the worker thread.

        Until the SUBACK, a frame published on a fresh session would be dropped by the broker, so a
        service that returned earlier could miss the first frames sent right after it started.

        The state file is opened first (a locked or broken one stops the service before it takes a frame).
        After the SUBACK, the streams are resumed from it (checkpoint and journal) before the worker takes
        any new frame; frames the broker delivers meanwhile wait in the inbox.

        With sharding, each own shard whose lock is free is taken (:meth:`take_shards`); one that another
        process serves (a standby took it over while this one was down) is taken when that process lets
        it go, and the worker keeps looking (``standby_poll_s``), as it does for ``standby_for``.
        """
        if self.settings.shards:
            directory = state_path(self.settings, 0).parent
            where = f"in {directory / state_path(self.settings, 0).name.replace('-s0of', '-s<k>of')}"
            self._queue = ShardedQueue(self.settings.shards, where)
            self.sinks.use_queue(self._queue)
            self._shards = frozenset()  # the shards taken below
        else:
            self.states[None] = StateStore(state_path(self.settings))
            self.sinks.use_queue(self.states[None].pending)
        try:
            connect(self.client)
        except BaseException:
            self._close_state()
            raise
        if not self._subscribed.wait(10):
            self.client.loop_stop()
            self._close_state()
            topics = ", ".join(self.subscriptions()[:6]) + (" ..." if len(self.subscriptions()) > 6 else "")
            raise BrokerError(f"the broker did not confirm the subscription to {topics} within 10 s")
        self._check_sinks()
        if self.settings.shards:
            try:
                self._start_shards()
            except BaseException:
                self.close()
                raise
        else:
            self._resume(self.states[None])
        log.info("subscribed to %s; taking frames", ", ".join(self.subscriptions()) or "nothing yet")
        self._worker = threading.Thread(target=self._work, name="detector-worker", daemon=True)
        self._worker.start()
        return self._worker

    def _start_shards(self) -> None:
        own = self.settings.shard_set
        busy = own - self._take_free_shards(own, "one of its own shards")
        poll = self.settings.standby_poll_s
        self._next_poll = time.monotonic() + poll
        if busy:
            log.warning(
                "shard(s) %s of %d are served by another process (their locks in %s are held): this process takes "
                "each one when it is free again (looking every %g s)",
                format_shard_set(busy),
                self.settings.shards,
                state_path(self.settings, min(busy)).parent,
                poll,
            )
        standby = self.settings.standby_set - own
        if standby:
            log.info(
                "standing by for shard(s) %s of %d: one whose process is gone (its lock in %s free at two looks, "
                "%g s apart) is taken over",
                format_shard_set(standby),
                self.settings.shards,
                state_path(self.settings, min(standby)).parent,
                poll,
            )

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)

    def close(self) -> None:
        # Shard sessions stay on the broker: the next process serving a shard resumes them.
        for client in (*self.shard_clients.values(), self.client):
            client.loop_stop()
            client.disconnect()
        self.sinks.close()
        self._close_state()

    def _close_state(self) -> None:
        for state in self.states.values():
            state.close()
        self.states.clear()

    def run_forever(self) -> int:
        """Serve until interrupted (exit code 0) or until the worker thread ends by itself (exit code 1).

        The worker survives every error of a single frame, so it ending means the service cannot go on;
        a non-zero code lets systemd or compose restart it instead of leaving a detector that does nothing.
        """
        worker = self.start()
        code = 0
        # SIGTERM (systemd, docker stop) ends the service as Ctrl-C does: the worker commits, checkpoints and
        # acknowledges, and the sinks say what stays queued, instead of the process just vanishing. A flag,
        # not an exception: an exception raised inside Thread.join can make the thread look finished early.
        terminated = threading.Event()
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, lambda *_: terminated.set()) if in_main else None
        try:
            while worker.is_alive() and not terminated.is_set():
                worker.join(0.5)
            if terminated.is_set():
                log.info("stopping (SIGTERM)")
            elif not self._stop.is_set():
                log.critical(
                    "the detector's worker stopped (%s); exiting with code 1 so that the service is restarted",
                    f"{type(self.worker_error).__name__}: {self.worker_error}" if self.worker_error else "no error",
                )
                code = 1
        except KeyboardInterrupt:
            log.info("stopping")
        finally:
            self.stop()
            self._worker_done.wait(30)  # not worker.join: see above
            worker.join(1)
            self.close()
            if in_main:
                signal.signal(signal.SIGTERM, previous)
        return code

    def wait_finished(self, devices: set[tuple[str, str]], timeout_s: float) -> bool:
        """Block until every (patient, device) in ``devices`` has ended its streams (demo and tests)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while not devices <= self.stats.finished_devices:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    # -- worker ------------------------------------------------------------------------------------

    def _work(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_s
        try:
            while not self._stop.is_set():
                # A timeout, so idle devices are evicted and heartbeats written without traffic.
                wait_s = min(1.0, max(0.0, next_beat - time.monotonic()))
                if self._to_confirm:
                    wait_s = min(wait_s, self.settings.confirm_s)
                batch, stopping = self._next_batch(wait_s)
                if batch:
                    # Journalled before they are handled: acknowledged only once the journal is committed.
                    for topic, payload, client, _mid, _qos in batch:
                        self._journal(topic, payload, client)
                    self._guarded(self.handle_batch, [(topic, payload) for topic, payload, *_ in batch])
                    self._unacked.extend((client, mid, qos) for _, _, client, mid, qos in batch if qos)
                self._sync()
                if stopping:
                    break
                if time.monotonic() >= self._next_eviction:
                    self._guarded(self.evict_idle)
                if self.settings.shards:
                    self._shard_chores()
                if time.monotonic() >= next_beat:
                    self._guarded(self.beat)
                    next_beat = time.monotonic() + self.heartbeat_s
            self._sync(final=True)
        except BaseException as err:
            # Logged here with its traceback; run_forever sees the thread gone and exits non-zero.
            self.worker_error = err
            log.critical("the detector's worker failed", exc_info=err)
        finally:
            self._worker_done.set()

    def _shard_chores(self) -> None:
        """In the worker: take-over requests from other threads (take_shards), and the look at the locks."""
        while True:
            try:
                wanted, done = self._requests.get_nowait()
            except queue.Empty:
                break
            try:
                done.set_result(self._take_free_shards(wanted, "asked to"))
            except BaseException as err:  # the caller of take_shards raises it
                done.set_exception(err)
        missing = (self.settings.shard_set | self.settings.standby_set) - set(self.shard_clients)
        if missing and time.monotonic() >= self._next_poll:
            self._guarded(self._poll_shards)

    # -- durability (detector/journal.py, docs/reliability.md) ---------------------------------------

    def _journal(self, topic: str, payload: bytes, client: mqtt.Client) -> None:
        """Journal a data frame in its shard's state file before it is handled (other messages, e.g. status,
        are not journalled), and note its sequence number for the device's next confirmation (after the commit).
        """
        found = device_of_data_topic(topic, self.settings.topic_prefix, self.settings.shards)
        if found is None:
            return
        shard, prefix, stream = found
        state = self.states.get(shard)
        if state is None:  # a shard this process does not hold (refused later as on the wrong shard)
            return
        state.append(topic, payload)
        seq = wire.peek_seq(payload)
        if seq is None or not self.settings.confirm_s:
            return
        key = (prefix, stream.patient, stream.device)
        # The newest journalled, not the highest: a restarted device counts from 0 again (and a resent
        # duplicate confirms again, repairing a confirmation lost in a broker crash).
        self._journalled.setdefault(key, {})[stream.kind] = seq
        self._confirm_via[key] = client

    def _sync(self, *, final: bool = False) -> None:
        """Retry sinks that are due; commit (group commit) and acknowledge; checkpoint when due.

        A commit waits until the inbox is empty or ``commit_s`` has passed, so a burst costs a few fsyncs,
        not one per frame. The acknowledgements follow the commit, never precede it.
        """
        states = list(self.states.values())  # one, or one per shard served
        if not states:
            self._ack()
            return
        for state in states:
            state.begin()  # what the retry writes to the queue commits with the frames
        self.sinks.retry()
        if final or self._inbox.empty() or any(state.commit_due() for state in states):
            for state in states:
                state.commit()
            self._ack()
            for key, seqs in self._journalled.items():  # committed: these may be confirmed now
                self._to_confirm.setdefault(key, {}).update(seqs)
            self._journalled.clear()
        if self._to_confirm:
            self._confirm()
        now = time.monotonic()
        journalled = sum(state.journal_bytes for state in states)
        if any(state.journal_rows for state in states) and (
            final or now >= self._next_checkpoint or journalled >= MAX_JOURNAL_BYTES
        ):
            self._checkpoint()

    def _confirm(self) -> None:
        """Tell each device whose frames were committed which ones, at most every ``confirm_s`` per device.

        QoS 1 on ``<device prefix>/<patient>/<device>/confirm`` (crampwatch.wire), on the client that
        received the frames: with sharding that is the owning shard's client, so a device's confirmations
        always come from the process serving its shard. A collector in ``--confirm detector`` mode
        deletes the confirmed frames from its spool; until then it keeps them and resends them after a
        broker restart, so the broker need not save anything per message (docs/reliability.md).
        """
        now = time.monotonic()
        for key in list(self._to_confirm):
            if now - self._last_confirm.get(key, -float("inf")) < self.settings.confirm_s:
                continue
            seqs = self._to_confirm.pop(key)
            client = self._confirm_via.get(key, self.client)
            client.publish(confirm_topic(*key), wire.encode_confirm(seqs), qos=1)
            self.confirmations += 1
            self._last_confirm[key] = now
            self._last_confirm.move_to_end(key)
        # Bounded like the devices: forget the devices confirmed longest ago (a new frame brings them back).
        while len(self._last_confirm) > 2 * self.settings.max_devices:
            old, _ = self._last_confirm.popitem(last=False)
            if old not in self._to_confirm:
                self._confirm_via.pop(old, None)

    @property
    def confirmed_devices(self) -> set[tuple[str, str]]:
        """(patient, device) of the devices this process has confirmed frames to (recently; tests, stats)."""
        return {(patient, device) for _, patient, device in self._last_confirm}

    def _ack(self) -> None:
        for client, mid, qos in self._unacked:
            client.ack(mid, qos)
        self._unacked.clear()

    def _checkpoint(self) -> None:
        """Save every live device's state and empty the journal, in one commit per file; then acknowledge.

        With sharding each device goes to its shard's file, so the shard's next owner finds it there.
        """
        self._next_checkpoint = time.monotonic() + self.settings.checkpoint_s
        states: dict[int | None, dict[tuple[str, str], bytes]] = {key: {} for key in self.states}
        for key, device in self.devices.items():
            shard = shard_of(key[0], self.settings.shards) if self.settings.shards else None
            try:
                states[shard][key] = checkpoint.dump(device)
            except Exception as err:  # a bug; its stream then restarts afresh after a crash, as before
                self.stats.internal_errors += 1
                self._error_log.log(logging.ERROR, "%s/%s: its state could not be checkpointed", *key, exc_info=err)
        here = checkpoint.fingerprint(self.model)
        for shard, state in self.states.items():
            state.save_checkpoint(states[shard], here)
        self._ack()

    def _resume(self, state: StateStore) -> None:
        """Load ``state``'s checkpoint and replay its journal: the streams as the last run left them, to the frame.

        With sharding, ``state`` is one shard's file, resumed when the shard is taken (at start or over).
        """
        self._next_checkpoint = time.monotonic() + self.settings.checkpoint_s
        written_by, states = state.load_checkpoint()
        frames = state.journal_rows
        if not states and not frames:
            return
        here = checkpoint.fingerprint(self.model)
        if written_by is not None and written_by != here:
            log.warning(
                "the saved stream state in %s was written by %s, and this is %s: discarded, so %d stream(s) in "
                "progress restart at their next frame (%d journalled frames not replayed)",
                state.path,
                written_by,
                here,
                len(states),
                frames,
            )
            state.discard_streams()
            return
        now = time.monotonic()
        loaded = 0
        for key, blob in states.items():
            try:
                self.devices[key] = checkpoint.load(blob, self.model)
            except Exception as err:
                self.stats.internal_errors += 1
                log.error("%s/%s: its saved state cannot be read; it restarts at its next frame", *key, exc_info=err)
                continue
            self._last_seen[key] = now
            loaded += 1
        log.info(
            "resuming %d stream(s) from the checkpoint in %s and replaying %d journalled frame(s)",
            loaded,
            state.path,
            frames,
        )
        started = time.monotonic()
        self._replaying = True
        try:
            # In rounds, as the worker takes live frames: one model call per round, not per frame.
            batch: list[tuple[str, bytes]] = []
            for message in state.journal():
                batch.append(message)
                if len(batch) >= MAX_BATCH_MESSAGES:
                    self._guarded(self.handle_batch, batch)
                    batch = []
            if batch:
                self._guarded(self.handle_batch, batch)
        finally:
            self._replaying = False
        self._checkpoint()
        log.info("resumed in %.1f s; %d stream(s) in progress", time.monotonic() - started, len(self.devices))

    def _check_sinks(self) -> None:
        """Say at start, clearly, when InfluxDB does not answer: the service goes on and queues on disk."""
        for sink in self._influx_sinks():
            problem = sink.check()
            if problem:
                log.error(
                    "%s; serving anyway: events and summaries wait %s and are written when it answers "
                    "(tried every %.0f s)",
                    problem,
                    self.sinks.queue.where,
                    self.settings.sink_retry_s,
                )

    def _next_batch(self, wait_s: float) -> tuple[list[Message], bool]:
        """Wait up to ``wait_s`` for a message, then take what else is queued (at most MAX_BATCH_MESSAGES).

        No extra wait for a batch to fill: a lightly loaded detector handles each frame as it comes, and a
        loaded one finds its batch already queued. Returns the messages and whether stop() was seen.
        """
        batch: list[Message] = []
        try:
            item = self._inbox.get(timeout=wait_s)
            while True:
                if item is None:
                    return batch, True
                batch.append(item)
                if len(batch) >= MAX_BATCH_MESSAGES:
                    break
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass
        return batch, False

    def _guarded(self, step: Callable[..., object], *args: object) -> None:
        """Run one step of the worker; the worker goes on whatever it raised.

        handle() has its own net; this one catches what escapes it (a failure while dead-lettering, or
        in eviction), logs and counts it.
        """
        try:
            step(*args)
        except Exception as err:
            self.stats.internal_errors += 1
            count = self.stats.internal_errors
            self._error_log.log(logging.ERROR, "internal error #%d in the worker", count, exc_info=err)

    def _influx_sinks(self) -> list[InfluxSink]:
        return [sink for sink in self.sinks.sinks if isinstance(sink, InfluxSink)]

    def beat(self) -> list[Heartbeat]:
        """Write one heartbeat per recording device (public so tests can drive it); not retried."""
        now = time.time()
        queued = self.sinks.total_pending()
        beats = []
        for key in self.devices:
            last = self._last_data.get(key, now)
            if now - last > RECORDING_GIVE_UP_S:
                continue
            newest = self._newest_ns.get(key)
            beats.append(
                Heartbeat(
                    patient=key[0],
                    device=key[1],
                    time_ns=time.time_ns(),
                    data_received=key in self._beat_data,
                    silent_s=round(now - last, 1),
                    lag_s=round(now - newest / 1e9, 1) if newest is not None else 0.0,
                    rejected_frames=self.stats.rejected_by_device.get(f"{key[0]}/{key[1]}", 0),
                    queued_points=queued,
                )
            )
        self._beat_data.clear()
        if queued:
            self._sink_log.log(
                logging.WARNING,
                "%d events and summaries wait %s for a sink that cannot take them",
                queued,
                self.sinks.queue.where,
            )
        if beats:
            for sink in self._influx_sinks():
                try:
                    sink.write_heartbeats(beats)
                except SinkError as err:
                    self._sink_log.log(logging.WARNING, "heartbeat not written: %s", err)
        return beats

    def _on_status(self, patient: str, device: str, payload: bytes) -> None:
        try:
            check_id(patient, "patient id")
            check_id(device, "device id")
            status = json.loads(payload)
            if not isinstance(status, dict):
                raise ValueError("not a JSON object")
        except (CrampWatchError, ValueError) as err:
            self._reject_log.log(logging.WARNING, "ignored a status message: %s", err)
            return
        for sink in self._influx_sinks():
            try:
                sink.write_device_status(patient, device, status, time.time_ns())
            except SinkError as err:
                self._sink_log.log(logging.WARNING, "device status not written: %s", err)

    def _forget(self, key: tuple[str, str]) -> None:
        """Drop what the heartbeats keep of a device whose streams ended or were freed."""
        for table in (self._last_data, self._newest_ns):
            table.pop(key, None)
        self._beat_data.discard(key)

    def handle(self, topic: str, payload: bytes) -> None:
        """Process one MQTT message (public so tests can drive it directly). Never raises for bad input."""
        self.handle_batch([(topic, payload)])

    def handle_batch(self, messages: list[tuple[str, bytes]]) -> None:
        """Process MQTT messages in arrival order, with ONE model call for the windows of all their devices.

        Each frame goes through its device's stream state and features as it comes (phase 1 of
        :class:`~detector.pipeline.DevicePipeline`); then the feature rows of every device are scored
        together, and each device continues with its own probabilities (phase 2: segments, episodes,
        events). Every row is scored on its own, so the events are exactly those of one call per frame.
        Events and summaries of the whole batch go to the sinks in one write.
        """
        for topic, payload in messages:
            self._guarded(self._handle_one, topic, payload)  # what escapes one message spares the rest
        self._score_pending()
        self._write()

    def _score_pending(self) -> None:
        """Phase 2 for every device with windows waiting: one model call over all their rows."""
        touched, self._touched = self._touched, {}
        waiting = [(key, dev, x) for key, dev in touched.items() if (x := dev.pending_windows()) is not None]
        if not waiting:
            return
        types = waiting[0][1].pipeline.model_types if waiting[0][1].pipeline is not None else ()
        try:
            if any(dev.pipeline is None or dev.pipeline.model_types != types for _, dev, _ in waiting):
                raise ValueError("devices with different model outputs")  # one model: not expected
            probs: list[np.ndarray] | None = np.split(
                self.model.probabilities(np.vstack([x for _, _, x in waiting]), types),
                np.cumsum([x.shape[0] for _, _, x in waiting[:-1]]),
            )
        except Exception as err:  # scored device by device below, so one device's failure stays its own
            self._error_log.log(logging.ERROR, "batched model call failed; scoring device by device", exc_info=err)
            probs = None
        for i, (key, dev, x) in enumerate(waiting):
            try:
                p = probs[i] if probs is not None else self.model.probabilities(x, dev.pipeline.model_types)  # type: ignore[union-attr]
                self._emit(dev.decide(p))
            except Exception as err:  # as in _handle_one: this device restarts, the others go on
                self.stats.internal_errors += 1
                self._error_log.log(
                    logging.ERROR,
                    "internal error #%d deciding windows of %s/%s; its detection restarts at its next frame",
                    self.stats.internal_errors,
                    *key,
                    exc_info=err,
                )
                self._drop_broken(key)

    def _handle_one(self, topic: str, payload: bytes) -> None:
        self.stats.messages += 1
        prefix = self.settings.topic_prefix
        shard: int | None = None
        if self.settings.shards:
            found = parse_shard(topic, prefix)
            if found is None or found[0] not in self._shards:
                return  # not a topic of this process's shards (the subscriptions only give those)
            shard, prefix = found
        parts = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
        if len(parts) == 3 and parts[2] == "status":
            self._on_status(parts[0], parts[1], payload)
            return
        stream = StreamTopic.parse(topic, prefix)
        if stream is None:
            return
        frame: Frame | None = None
        try:
            check_id(stream.patient, "patient id")
            check_id(stream.device, "device id")
            if shard is not None and shard_of(stream.patient, self.settings.shards) != shard:
                # Its other frames go to another shard's process: two states for one patient would split it.
                raise StreamError(
                    f"patient {stream.patient} belongs to shard {shard_of(stream.patient, self.settings.shards)} "
                    f"of {self.settings.shards}, not {shard}: set the collector's shards to the detectors' "
                    f"({self.settings.shards})"
                )
            frame = wire.decode(payload)
            if frame.kind is not stream.kind:
                raise FrameError(f"frame says {frame.kind} but topic says {stream.kind}", topic=topic)
            self._take(stream, frame)
        except CrampWatchError as err:
            reason = err.reason if isinstance(err, FrameError) else str(err)
            self._reject(topic, stream, payload, frame, reason)
        except Exception as err:  # one frame must never end the worker, whatever it raised
            self.stats.internal_errors += 1
            reason = f"internal error {type(err).__name__}: {err}"
            self._error_log.log(
                logging.ERROR,
                "internal error #%d on a frame of %s/%s; its detection restarts at its next frame",
                self.stats.internal_errors,
                stream.patient,
                stream.device,
                exc_info=err,
            )
            self._reject(topic, stream, payload, frame, reason)
            self._drop_broken((stream.patient, stream.device))

    def _take(self, stream: StreamTopic, frame: Frame) -> None:
        key = (stream.patient, stream.device)
        device = self.devices.get(key)
        new = device is None
        if device is None:
            if len(self.devices) >= self.settings.max_devices:
                self.evict_idle()
            if len(self.devices) >= self.settings.max_devices:
                raise StreamError(
                    f"{self.settings.max_devices} devices are streaming already, the most this detector takes "
                    "(--max-devices / CRAMP_MAX_DEVICES); frame of a new device refused"
                )
            device = DeviceStreams(
                self.model,
                stream.patient,
                stream.device,
                max_frame_s=MAX_LIVE_FRAME_S,
                max_frame_values=MAX_LIVE_FRAME_VALUES,
                batch_model=True,  # handle_batch scores all devices' windows in one call
                open_events=self.settings.open_events,
            )
        out = device.on_frame(frame)  # a refused frame leaves no state behind for a new device
        if new:
            self.devices[key] = device
            log.info("new stream from patient %s device %s", *key)
        self._last_seen[key] = time.monotonic()
        self._last_seen.move_to_end(key)
        self._last_data[key] = time.time()
        self._beat_data.add(key)
        if out.summaries:
            self._newest_ns[key] = max(s.time_ns for s in out.summaries)
        self._emit(out)
        self._touched[key] = device
        self._finished_device(key, device)

    def _finished_device(self, key: tuple[str, str], device: DeviceStreams) -> None:
        """Free a device whose streams ended; tests and the demo hear of it once its events are written."""
        if device.finished and self.devices.get(key) is device:
            log.info("%s/%s: end of stream; detection finished", *key)
            self.devices.pop(key, None)
            self._last_seen.pop(key, None)
            self._forget(key)
            self._just_finished.append(key)

    def evict_idle(self, now: float | None = None) -> int:
        """Finish and free the devices that sent nothing for ``device_idle_s``; returns how many.

        Their pipelines are finished first and what that completes is written, so eviction loses no event.
        """
        now = time.monotonic() if now is None else now
        self._next_eviction = now + EVICT_EVERY_S
        evicted = 0
        while self._last_seen:
            key, seen = next(iter(self._last_seen.items()))
            if now - seen < self.settings.device_idle_s:
                break
            del self._last_seen[key]
            self._forget(key)
            device = self.devices.pop(key, None)
            if device is None:
                continue
            try:
                self._emit(device.finish())
            except Exception as err:  # a broken device must not stop eviction or the worker
                self.stats.internal_errors += 1
                self._error_log.log(logging.ERROR, "finishing idle %s/%s failed", *key, exc_info=err)
            evicted += 1
            self.stats.evicted_devices += 1
            log.info("%s/%s sent nothing for %.0f s: detection finished and its state freed", *key, now - seen)
        self._write()
        return evicted

    def _drop_broken(self, key: tuple[str, str]) -> None:
        """After an internal error, finish what can be finished of ``key`` and forget it: its state may be broken."""
        device = self.devices.pop(key, None)
        self._last_seen.pop(key, None)
        self._forget(key)
        if device is None:
            return
        try:
            self._emit(device.finish())
        except Exception as err:  # the state is what failed; what it held is lost, and said so
            self._error_log.log(logging.ERROR, "%s/%s: its unfinished detection is lost", *key, exc_info=err)

    def _reject(self, topic: str, stream: StreamTopic, payload: bytes, frame: Frame | None, reason: str) -> None:
        """Count, log and dead-letter a frame that must not reach a pipeline."""
        self.stats.rejected_frames += 1
        try:
            key = f"{check_id(stream.patient, 'patient id')}/{check_id(stream.device, 'device id')}"
        except CrampWatchError:
            key = INVALID_ID_KEY
        counts = self.stats.rejected_by_device
        if key not in counts and len(counts) >= self.settings.max_devices:
            key = OTHER_KEY  # the counters are bounded too: a flood of ids must not grow them
        counts[key] = counts.get(key, 0) + 1
        shown = topic if len(topic) <= MAX_TOPIC_SHOWN else topic[:MAX_TOPIC_SHOWN] + "..."
        self._reject_log.log(
            logging.WARNING,
            "rejected frame on %s: %s (%d from %s, %d in all)",
            shown if shown.isprintable() else repr(shown),  # no forged line breaks in the log
            reason,
            counts[key],
            key,
            self.stats.rejected_frames,
        )
        record: dict[str, Any] = {"topic": shown, "bytes": len(payload)}
        if frame is not None:
            record.update(
                stream=frame.kind.value,
                seq=frame.seq,
                t0_ns=frame.t0_ns,
                rate_hz=frame.rate_hz,
                channels=len(frame.channels),
                samples=frame.n_samples,
            )
        # A replayed journal meets the frames it refused before: they were dead-lettered then.
        if self.sinks.dead_letter is not None and not self._replaying:
            self.sinks.dead_letter.add_records("detector", "frame", reason, [record])

    def _emit(self, out: PipelineOutput) -> None:
        """Log what ``out`` completed and keep it for the next :meth:`_write`."""
        self._unwritten.extend(out)
        for event in out.events:
            log.info(
                "%s%s %s/%s at %.1f s for %.1f s (confidence %.2f, peak %.0f uV)",
                "" if event.state == "final" else f"{event.state} ",
                event.type,
                event.patient,
                event.device,
                event.onset_s,
                event.duration_s,
                event.confidence,
                event.peak_uv,
            )

    def _write(self) -> None:
        """Write what the last round completed, in one write per sink, then report finished devices."""
        out, self._unwritten = self._unwritten, PipelineOutput()
        if out.events or out.summaries:
            self.sinks.write(out.events, out.summaries)
            final = [e for e in out.events if e.state == "final"]
            self.stats.events += len(final)
            self.stats.open_events += len(out.events) - len(final)
            self.events_log.extend(final)
        if self._just_finished:
            with self._idle:
                self.stats.finished_devices.update(self._just_finished)
                self._just_finished.clear()
                self._idle.notify_all()
