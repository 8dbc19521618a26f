"""Publish frames over MQTT with QoS 1, store-and-forward through a durable spool, lose nothing.

Every source (simulator, file replay, BLE) hands frames to one :class:`FramePublisher`::

    source --publish(frame)--> spool (SQLite, on disk) --pump thread--> paho --> broker
                                  ^                                       |
                                  +------- delete after PUBACK + barrier -+

``publish()`` only encodes the frame and appends it to the :class:`~collector.spool.Spool`; the frame is
durable when it returns. A pump thread hands spooled frames to paho, at most ``window`` at a time, so a
night-long outage costs disk, not memory. On restart the pump starts from the oldest frame left in the
spool, so frames that never got a PUBACK are sent again, in order.

Why a PUBACK is not enough to delete: mosquitto sends the PUBACK *before* it saves its database (even
with ``autosave_on_changes true``), so a broker killed right after a PUBACK can lose that message. A frame
therefore stays in the spool until a *later* message, handed to paho after the frame's PUBACK arrived,
is acknowledged on the same connection: the broker's loop has then finished the iteration that acked
the frame, including its save. During streaming the next frame is that barrier; when the stream pauses
(or on ``flush()``) the pump sends an empty QoS 1 message on ``<prefix>/<patient>/<device>/sync``,
a topic the detector does not subscribe to. If the connection drops first, the acknowledged but
unconfirmed frames are sent again, first thing after the reconnect (the detector drops the duplicates
by sequence number).

Order across reconnects (paho 2.2 specifics, read from its source and seen in the broker-kill test):
paho resends its unacknowledged messages when the CONNACK arrives, but a message published after the
new socket exists and before the CONNACK is written at once, *ahead* of that backlog, and paho's
in-flight limit (20) puts later messages in a queue that new publishes can overtake. So the pump hands
nothing to paho while disconnected (the spool holds the backlog), never hands it more than its
in-flight limit (so paho never queues), resends unconfirmed frames from ``on_connect`` (paho has just
reset its in-flight count, so they are written before its own backlog), and sends new frames only once
the messages from the old connection are acknowledged. The stream then reaches the broker in order.

paho also keeps ``MessageInfo.rc`` at "no connection" for messages delivered after a reconnect, so the
mid reported to ``on_publish`` is the only reliable handle. paho's network thread holds its own lock
while it calls ``on_publish``; our callbacks only take ``self._lock``, and nothing here ever calls paho
while holding ``self._lock`` (that lock-order deadlock happened once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import paho.mqtt.client as mqtt

from crampwatch import wire
from crampwatch.errors import BrokerError, CrampWatchError
from crampwatch.frames import Frame, StreamKind
from crampwatch.topics import StreamTopic

from .spool import Spool, SpoolRow

log = logging.getLogger(__name__)

#: paho's default in-flight limit; it can only be raised before the client connects.
PAHO_INFLIGHT: Final = 20
#: Frames handed to paho and not yet acknowledged, at most. Never more than paho's in-flight limit, so
#: paho never queues messages itself (its queue can be overtaken, see the module docstring).
DEFAULT_WINDOW: Final = PAHO_INFLIGHT
#: How long acknowledged frames wait for a later frame to act as save barrier before an explicit one.
BARRIER_DELAY_S: Final = 0.5
#: PUBACKs for mids we have not registered yet are kept this long (paho may call on_publish first).
EARLY_ACK_TTL_S: Final = 60.0
#: After a reconnect, new frames wait for the old connection's messages to be acknowledged, at most this long.
STALE_WAIT_S: Final = 30.0
_MAX_REASON_OK: Final = 0x80  # MQTT v5 reason codes below 0x80 are successes (0x10 = no subscribers)


@dataclass
class PublishStats:
    """Counters since the publisher started.

    ``published``: frames accepted by :meth:`FramePublisher.publish` (spooled); ``acknowledged``: PUBACKs
    for frames (including re-sends); ``sent``: messages handed to paho; ``resent``: frames sent again
    (from an earlier run or after a connection drop); ``rejected``: PUBACKs with a failure reason code
    (for example "Not authorized"); those frames stay in the spool; ``failed``: frames that could not be
    spooled (:meth:`FramePublisher.publish` raised).
    """

    published: int = 0
    failed: int = 0
    acknowledged: int = 0
    bytes: int = 0
    sent: int = 0
    resent: int = 0
    rejected: int = 0
    barriers: int = 0


@dataclass(frozen=True, slots=True)
class _Sent:
    row: int | None  # spool row id; None for barriers and auxiliary messages
    acks_seen: int  # PUBACKs observed before this message was handed to paho
    generation: int  # connection it was handed to paho on
    barrier: bool = False


@dataclass(frozen=True, slots=True)
class _Acked:
    ordinal: int  # position of its PUBACK in arrival order
    generation: int  # connection the PUBACK arrived on
    row: int


class FramePublisher:
    """Spools frames and publishes them on ``<prefix>/<patient>/<device>/<stream>`` until acknowledged.

    Args:
        client: a paho client from :func:`crampwatch.mqtt.make_client` (connected or not yet).
        prefix, patient, device: the topic levels.
        spool: the durable spool; default an in-memory one (nothing survives the process).
        window: most frames in paho's hands at once (above 20 only if the client is not connected yet:
            paho's in-flight limit is then raised to match).
    """

    def __init__(
        self,
        client: mqtt.Client,
        prefix: str,
        patient: str,
        device: str,
        *,
        spool: Spool | None = None,
        window: int = DEFAULT_WINDOW,
        barrier_delay_s: float = BARRIER_DELAY_S,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.patient = patient
        self.device = device
        self.spool = spool if spool is not None else Spool(None)
        self._owns_spool = spool is None
        self.window = window
        self.barrier_delay_s = barrier_delay_s
        self.sync_topic = f"{prefix}/{patient}/{device}/sync"
        self.stats = PublishStats()
        self._lock = threading.Condition()
        # All of the following are guarded by _lock.
        self._inflight: dict[int, _Sent] = {}
        self._early: dict[int, tuple[int, int, float, object]] = {}  # mid -> (ordinal, generation, when, reason)
        self._acked: deque[_Acked] = deque()  # acknowledged, waiting for a save barrier
        self._acked_since = 0.0
        self._confirmed: list[int] = []  # rows safe to delete
        self._resend: list[int] = []  # rows to send again (connection dropped before their barrier)
        self._rejected_rows: set[int] = set()
        self._last_refusal = ""  # reason code of the last refused message, e.g. "Not authorized"
        self._aux_rejected = 0
        self._acks = 0
        self._generation = 0  # +1 per lost connection
        self._connected = client.is_connected()
        self._stale: set[int] = set()  # mids handed to paho on an earlier connection, not yet acked
        self._stale_since = 0.0
        self._last_row = 0  # highest spool row id handed to paho
        self._initial_last_id = self.spool.last_id  # rows up to here come from an earlier run
        self._barrier_inflight = False
        self._urgent = 0  # callers waiting in flush()/wait_until_below(): send barriers at once
        self._stopping = False
        self._previous_on_connect: Callable[..., None] | None = client.on_connect
        self._previous_on_disconnect: Callable[..., None] | None = client.on_disconnect
        if window > PAHO_INFLIGHT:
            if client.is_connected():
                raise ValueError(f"a window above {PAHO_INFLIGHT} needs the publisher created before connect()")
            client.max_inflight_messages_set(window)
        client.on_publish = self._on_publish
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._pump = threading.Thread(target=self._run_pump, name=f"spool-pump-{patient}-{device}", daemon=True)
        self._pump.start()

    # -- the source side ---------------------------------------------------------------------------

    def topic(self, kind: StreamKind) -> str:
        return StreamTopic(self.patient, self.device, kind).render(self.prefix)

    def next_seq(self, kind: StreamKind) -> int:
        """The sequence number the next frame of ``kind`` should carry to continue the spooled stream."""
        last = self.spool.last_seq(self.topic(kind))
        return 0 if last is None else last + 1

    def publish(self, frame: Frame) -> None:
        """Spool ``frame`` durably; the pump sends it. Raises SpoolError if it cannot be stored."""
        try:
            payload = wire.encode(frame)
            self.spool.append(self.topic(frame.kind), frame.seq, payload)
        except CrampWatchError:
            with self._lock:
                self.stats.failed += 1
            raise
        with self._lock:
            self.stats.published += 1
            self.stats.bytes += len(payload)
            self._lock.notify_all()

    def publish_aux(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish a non-frame message (status) on the same client, QoS 1, not spooled.

        Goes through here so that its PUBACK is not mistaken for a frame's.
        """
        with self._lock:
            sent = _Sent(None, self._acks, self._generation)
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            self._register(info.mid, sent)

    @property
    def pending(self) -> int:
        """Frames in the spool: not yet acknowledged, or acknowledged but not yet confirmed saved."""
        return self.spool.count

    def wait_until_below(self, limit: int, timeout_s: float) -> None:
        """Back-pressure: block while more than ``limit`` frames are spooled and not yet delivered."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._urgent += 1
            self._lock.notify_all()
            try:
                while self.spool.count > limit:
                    if self._rejected_rows and self.spool.count - len(self._rejected_rows) <= limit:
                        # Only frames the broker refused are left: waiting cannot help (a denied publish
                        # is refused again), so say so now instead of after the timeout.
                        raise BrokerError(self._stuck_message(timeout_s))
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise BrokerError(self._stuck_message(timeout_s))
                    self._lock.wait(min(left, 0.5))
            finally:
                self._urgent -= 1

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until the broker has acknowledged (and saved) every frame published so far."""
        self.wait_until_below(0, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the pump thread (unsent frames stay in the spool for the next run) and close the spool."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._pump.join(timeout_s)
        if self._owns_spool:
            self.spool.close()

    def __enter__(self) -> FramePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acl_hint(self) -> str:
        base = f"{self.prefix}/{self.patient}/{self.device}"
        return (
            f"If it is 'Not authorized', this account may not write {base}/emg, /acc, /status and /sync: the "
            f"deployed broker lets account '{self.patient}/{self.device}' write exactly those "
            "(cramp-collector provision creates it)."
        )

    def _stuck_message(self, timeout_s: float) -> str:
        if self._rejected_rows or self._aux_rejected:
            return (
                f"{len(self._rejected_rows)} frame(s) and {self._aux_rejected} status or sync message(s) were "
                f"refused by the broker ({self._last_refusal}). "
                f"{self._acl_hint()} They stay in the spool"
            )
        return (
            f"{self.spool.count} frame(s) not delivered within {timeout_s:.0f} s: the broker is unreachable "
            "or overloaded; they stay in the spool and are sent when it is back"
        )

    # -- paho's network thread: bookkeeping under _lock only (on_connect also resends, lock-free) -----

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        with self._lock:
            self._acks += 1
            self._stale.discard(mid)
            sent = self._inflight.pop(mid, None)
            if sent is None:
                self._early[mid] = (self._acks, self._generation, time.monotonic(), reason)
            else:
                self._ack_or_reject(sent, self._acks, self._generation, reason)
            self._lock.notify_all()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if not getattr(reason, "is_failure", False):
            # Runs before paho resends its own backlog, and paho has just reset its in-flight count, so
            # these go out first: the oldest unconfirmed frames lead, as they should.
            with self._lock:
                self._connected = True
                resend, self._resend = sorted(self._resend), []
            self._send_rows(self.spool.get(resend), again=True)
            with self._lock:
                self._lock.notify_all()
        if self._previous_on_connect is not None:
            self._previous_on_connect(client, userdata, flags, reason, props)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        with self._lock:
            self._connected = False
            self._generation += 1
            if self._acked:
                # The broker may have died before saving these: send them again after the reconnect.
                self._resend.extend(a.row for a in self._acked)
                self._acked.clear()
            self._stale = set(self._inflight)  # paho resends these itself after the reconnect
            self._stale_since = time.monotonic()
            self._barrier_inflight = False  # a pending barrier's ack would now be for the old connection
            self._lock.notify_all()
        if self._previous_on_disconnect is not None:
            self._previous_on_disconnect(client, userdata, flags, reason, props)

    # -- bookkeeping (caller holds _lock) ----------------------------------------------------------

    def _register(self, mid: int, sent: _Sent) -> None:
        early = self._early.pop(mid, None)
        if early is None:
            self._inflight[mid] = sent
            if sent.generation != self._generation:
                self._stale.add(mid)  # the connection dropped while paho took it: paho resends it
        else:
            self._ack_or_reject(sent, early[0], early[1], early[3])
        if self._early:
            stale = time.monotonic() - EARLY_ACK_TTL_S
            for old in [m for m, (_, _, when, _) in self._early.items() if when < stale]:
                del self._early[old]

    def _ack_or_reject(self, sent: _Sent, ordinal: int, generation: int, reason: object) -> None:
        if int(getattr(reason, "value", 0)) >= _MAX_REASON_OK:
            self._reject(sent, reason)
        else:
            self._ack(sent, ordinal, generation)

    def _ack(self, sent: _Sent, ordinal: int, generation: int) -> None:
        if sent.barrier:
            self._barrier_inflight = False
        if sent.row is not None:
            self.stats.acknowledged += 1
            if generation != self._generation:
                self._resend.append(sent.row)  # acked on a connection that is gone: unconfirmed
            else:
                if not self._acked:
                    self._acked_since = time.monotonic()
                self._acked.append(_Acked(ordinal, generation, sent.row))
        if generation == self._generation:
            # Everything acked before this message was handed to paho is now saved by the broker.
            while self._acked and self._acked[0].ordinal <= sent.acks_seen:
                self._confirmed.append(self._acked.popleft().row)
            if self._acked:
                self._acked_since = time.monotonic()

    def _reject(self, sent: _Sent, reason: object) -> None:
        if sent.barrier:
            self._barrier_inflight = False
        self._last_refusal = str(reason)
        if sent.row is None:
            # A refused barrier is sent again every barrier_delay_s: log the first and then every 1000th.
            self._aux_rejected += 1
            if self._aux_rejected == 1 or self._aux_rejected % 1000 == 0:
                log.error(
                    "the broker refused %d status or sync message(s) (last reason: %s). %s",
                    self._aux_rejected,
                    reason,
                    self._acl_hint(),
                )
            return
        self.stats.rejected += 1
        self._rejected_rows.add(sent.row)
        if self.stats.rejected == 1 or self.stats.rejected % 1000 == 0:
            log.error(
                "the broker refused %d frame(s) (last reason: %s). They stay in the spool and are retried "
                "on the next start. %s",
                self.stats.rejected,
                reason,
                self._acl_hint(),
            )

    # -- the pump thread ---------------------------------------------------------------------------

    def _may_send(self) -> bool:
        if not self._connected:
            return False
        if self._stale and time.monotonic() - self._stale_since > STALE_WAIT_S:
            log.warning("%d message(s) from before the reconnect still unacknowledged; sending on", len(self._stale))
            self._stale.clear()
        return not self._stale

    def _barrier_due(self) -> bool:
        return (
            bool(self._acked)
            and not self._inflight
            and not self._barrier_inflight
            and not self._resend
            and self.spool.last_id <= self._last_row
            and (self._urgent > 0 or time.monotonic() - self._acked_since >= self.barrier_delay_s)
            and self._may_send()
        )

    def _work_ready(self) -> bool:
        if self._confirmed:
            return True
        if not self._may_send():
            return False
        room = len(self._inflight) < self.window
        new_rows = self.spool.last_id > self._last_row
        return (room and (bool(self._resend) or new_rows)) or self._barrier_due()

    def _run_pump(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._work_ready():
                    self._lock.wait(0.1 if (self._acked or self._stale) else 1.0)
                if self._stopping:
                    return
                confirmed, self._confirmed = self._confirmed, []
                resend: list[int] = []
                room = 0
                barrier = False
                if self._may_send():
                    room = max(0, self.window - len(self._inflight))
                    self._resend.sort()
                    resend, self._resend = self._resend[:room], self._resend[room:]
                    barrier = self._barrier_due()
                    self._barrier_inflight = self._barrier_inflight or barrier
                last_row = self._last_row
            try:
                self._pump_once(confirmed, resend, room, last_row, barrier)
            except Exception as err:  # the pump must survive anything for an overnight run
                log.exception("spool pump: %s; retrying in 1 s", err)
                with self._lock:
                    self._resend.extend(resend)
                    self._barrier_inflight = False
                time.sleep(1.0)

    def _pump_once(self, confirmed: list[int], resend: list[int], room: int, last_row: int, barrier: bool) -> None:
        if confirmed:
            self.spool.delete(confirmed)
            with self._lock:
                self._lock.notify_all()  # flush() waits on spool.count
        if resend:
            self._send_rows(self.spool.get(resend), again=True)
        if room > len(resend):
            self._send_rows(self.spool.after(last_row, room - len(resend)), again=False)
        if barrier:
            self._send_barrier()

    def _send_rows(self, rows: list[SpoolRow], *, again: bool) -> None:
        for row in rows:
            with self._lock:
                if not self._connected:  # lost the connection meanwhile: keep the rest for the reconnect
                    if not again:
                        return  # not handed over, so the pump picks these up again after _last_row
                    self._resend.append(row.id)
                    continue
                sent = _Sent(row.id, self._acks, self._generation)
                self._last_row = max(self._last_row, row.id)
            info = self.client.publish(row.topic, row.payload, qos=1)  # no lock held: see module docstring
            with self._lock:
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.error(
                        "publishing spooled frame on %s failed: %s; retrying", row.topic, mqtt.error_string(info.rc)
                    )
                    self._resend.append(row.id)
                    continue
                self.stats.sent += 1
                if again or row.id <= self._initial_last_id:
                    self.stats.resent += 1
                self._register(info.mid, sent)

    def _send_barrier(self) -> None:
        with self._lock:
            sent = _Sent(None, self._acks, self._generation, barrier=True)
        info = self.client.publish(self.sync_topic, b"", qos=1)
        with self._lock:
            self.stats.barriers += 1
            self._register(info.mid, sent)
