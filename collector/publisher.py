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

Detector confirmation (``confirm="detector"``, docs/reliability.md). The broker's PUBACK and save
barrier make a frame's safety depend on the broker's disk: mosquitto must save on every change
(``autosave_on_changes``), which caps it at a few hundred frames/s. In this mode a frame stays in the
spool until the *detector* confirms it journalled and committed (detector/journal.py): it publishes, per
device, a cumulative confirmation on ``<prefix>/<patient>/<device>/confirm`` (crampwatch.wire) that this
publisher subscribes to; rows up to the confirmed sequence number of each stream are then deleted. A
PUBACK only frees a slot of the window; no save barrier is sent. Whatever the broker loses (a SIGKILL
without per-change save, a restart with no persistence at all) is still in the spool and is sent again:

* on every (re)connect, paho's own backlog is dropped (every frame in it is in the spool too, and paho
  would resend it *ahead* of older unconfirmed frames) and the pump starts again from the oldest row
  in the spool, in order; the detector drops what it has seen by sequence number and confirms again.
* It starts with a *probe*: only the oldest unconfirmed frame, sent again (backing off from
  ``PROBE_S`` to ``PROBE_MAX_S``) until the detector confirms it. A broker that restarted empty has
  lost the detector's subscription until the detector reconnects, and drops what arrives before; had
  the pump streamed on, the detector would meet a later frame first, take the dropped ones for lost
  (a gap, filled) and the resent ones for duplicates. The probe is a frame the detector has seen or the
  very next one, so no gap can arise; once it is confirmed the detector is subscribed, and the pump
  streams with up to ``confirm_window`` frames sent and not yet confirmed.
* If no confirmation comes for ``STALL_S`` while frames wait for one, the pump probes again from the
  oldest unconfirmed frame (a detector that was away, a confirmation the broker lost).

A detector that does not confirm (``--confirm-s 0``, or an older one) therefore stalls this mode at
the probe, and the spool fills to its bound: use ``confirm="broker"`` with such a detector.

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
from typing import Final, Literal

import paho.mqtt.client as mqtt

from crampwatch import wire
from crampwatch.errors import BrokerError, CrampWatchError
from crampwatch.frames import Frame, StreamKind
from crampwatch.topics import StreamTopic, confirm_topic

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
#: paho 2.1/2.2 internals that detector confirmation clears on every connect (_drop_paho_backlog).
_PAHO_BACKLOG: Final = ("_out_message_mutex", "_out_messages", "_inflight_messages")
_MAX_REASON_OK: Final = 0x80  # MQTT v5 reason codes below 0x80 are successes (0x10 = no subscribers)
#: Detector confirmation: most frames sent and not yet confirmed by the detector (all streams of the device).
DEFAULT_CONFIRM_WINDOW: Final = 5000
#: Detector confirmation: first wait for the probe's confirmation, doubled up to PROBE_MAX_S while none comes.
PROBE_S: Final = 2.0
PROBE_MAX_S: Final = 60.0
#: Detector confirmation: without any confirmation for this long while frames wait for one, probe again.
STALL_S: Final = 60.0

ConfirmMode = Literal["broker", "detector"]


@dataclass
class PublishStats:
    """Counters since the publisher started.

    ``published``: frames accepted by :meth:`FramePublisher.publish` (spooled); ``acknowledged``: PUBACKs
    for frames (including re-sends); ``sent``: messages handed to paho; ``resent``: frames sent again
    (from an earlier run or after a connection drop); ``rejected``: PUBACKs with a failure reason code
    (for example "Not authorized"); those frames stay in the spool; ``failed``: frames that could not be
    spooled (:meth:`FramePublisher.publish` raised). Detector confirmation only: ``confirmed``: frames the
    detector confirmed (deleted from the spool); ``confirmations``: confirmation messages received;
    ``probes``: times the pump went back to the oldest unconfirmed frame (connects and stalls).
    """

    published: int = 0
    failed: int = 0
    acknowledged: int = 0
    bytes: int = 0
    sent: int = 0
    resent: int = 0
    rejected: int = 0
    barriers: int = 0
    confirmed: int = 0
    confirmations: int = 0
    probes: int = 0


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
        confirm: ``"broker"``: delete a frame after the broker's PUBACK and a save barrier (the broker must
            save on every change); ``"detector"``: delete it once the detector confirms it journalled
            (see the module docstring).
        confirm_window: detector confirmation: most frames sent and not yet confirmed.
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
        confirm: ConfirmMode = "broker",
        confirm_window: int = DEFAULT_CONFIRM_WINDOW,
        probe_s: float = PROBE_S,
        stall_s: float = STALL_S,
    ) -> None:
        if confirm not in ("broker", "detector"):
            raise ValueError(f"confirm must be 'broker' or 'detector', not {confirm!r}")
        self.client = client
        self.prefix = prefix
        self.patient = patient
        self.device = device
        self.spool = spool if spool is not None else Spool(None)
        self._owns_spool = spool is None
        self.window = window
        self.barrier_delay_s = barrier_delay_s
        self.sync_topic = f"{prefix}/{patient}/{device}/sync"
        self.confirm = confirm
        self.confirm_window = max(1, confirm_window)
        self.confirm_topic = confirm_topic(prefix, patient, device)
        self.probe_s = probe_s
        self.stall_s = stall_s
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
        self._max_sent = 0  # highest spool row id ever handed to paho (_last_row goes back for a resend)
        self._initial_last_id = self.spool.last_id  # rows up to here come from an earlier run
        self._barrier_inflight = False
        self._urgent = 0  # callers waiting in flush()/wait_until_below(): send barriers at once
        self._stopping = False
        # Detector confirmation (guarded by _lock): per stream topic, the (seq, row) of the frames sent on
        # this connection and not yet confirmed, in send order; their count; probing or streaming; when
        # the last confirmation that deleted something (or the last probe) came; the probe's wait.
        self._unconfirmed: dict[str, deque[tuple[int, int]]] = {}
        self._unconfirmed_count = 0
        self._probing = True
        self._progress_at = time.monotonic()
        self._probe_wait = probe_s
        self._previous_on_connect: Callable[..., None] | None = client.on_connect
        self._previous_on_disconnect: Callable[..., None] | None = client.on_disconnect
        if window > PAHO_INFLIGHT:
            if client.is_connected():
                raise ValueError(f"a window above {PAHO_INFLIGHT} needs the publisher created before connect()")
            client.max_inflight_messages_set(window)
        client.on_publish = self._on_publish
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        if confirm == "detector":
            if not all(hasattr(client, name) for name in _PAHO_BACKLOG):
                # paho's own resends would go out ahead of the probe and could make the detector see a gap
                # (see _drop_paho_backlog): refuse rather than risk it.
                raise CrampWatchError(
                    f"confirm = 'detector' needs paho-mqtt's resend backlog ({', '.join(_PAHO_BACKLOG)}), which "
                    f"paho-mqtt {getattr(mqtt, '__version__', '?')} does not have: install paho-mqtt 2.1 or 2.2, "
                    "or use confirm = 'broker' with a broker that saves on every change"
                )
            client.message_callback_add(self.confirm_topic, self._on_confirm)
            if client.is_connected():  # on_connect will not run for this connection: start its probe here
                client.subscribe(self.confirm_topic, qos=1)
                self.stats.probes += 1
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
            f"deployed broker lets account '{self.patient}/{self.device}' write exactly those, and read "
            f"{base}/confirm (cramp-collector provision creates it)."
        )

    def _stuck_message(self, timeout_s: float) -> str:
        if self._rejected_rows or self._aux_rejected:
            return (
                f"{len(self._rejected_rows)} frame(s) and {self._aux_rejected} status or sync message(s) were "
                f"refused by the broker ({self._last_refusal}). "
                f"{self._acl_hint()} They stay in the spool"
            )
        if self.confirm == "detector" and self._connected:
            return (
                f"{self.spool.count} frame(s) not confirmed by the detector within {timeout_s:.0f} s: is "
                f"cramp-detector serve running, with confirmations on (--confirm-s above 0), and may this account "
                f"read {self.confirm_topic}? They stay in the spool; with a detector that does not confirm, "
                "use --confirm broker"
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
        if not getattr(reason, "is_failure", False) and self.confirm == "detector":
            # Every connect: a broker that restarted empty has forgotten the subscription.
            client.subscribe(self.confirm_topic, qos=1)
            self._drop_paho_backlog()  # runs before paho resends it: see the module docstring
            with self._lock:
                self._connected = True
                self._probe_wait = self.probe_s  # a new broker connection: no reason to wait long for the first
                self._restart_from_oldest()
                self._lock.notify_all()
        elif not getattr(reason, "is_failure", False):
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
        if self.confirm == "detector":
            self._drop_paho_backlog()
        with self._lock:
            self._connected = False
            self._generation += 1
            if self.confirm == "detector":
                # Nothing to track: every frame not yet confirmed is sent again from the spool on the
                # next connect (on_connect).
                self._inflight.clear()
                self._early.clear()
                self._lock.notify_all()
            elif self._acked:
                # The broker may have died before saving these: send them again after the reconnect.
                self._resend.extend(a.row for a in self._acked)
                self._acked.clear()
            self._stale = set(self._inflight)  # paho resends these itself after the reconnect (broker mode)
            self._stale_since = time.monotonic()
            self._barrier_inflight = False  # a pending barrier's ack would now be for the old connection
            self._lock.notify_all()
        if self._previous_on_disconnect is not None:
            self._previous_on_disconnect(client, userdata, flags, reason, props)

    def _on_confirm(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        """The detector journalled this device's frames up to a sequence number per stream: forget them."""
        try:
            seqs = wire.decode_confirm(bytes(msg.payload))
        except CrampWatchError as err:
            log.warning("ignored a confirmation on %s: %s", msg.topic, err)
            return
        with self._lock:
            self.stats.confirmations += 1
            for kind, seq in seqs.items():
                sent = self._unconfirmed.get(self.topic(kind))
                while sent and sent[0][0] <= seq:
                    self._confirmed.append(sent.popleft()[1])
                    self._unconfirmed_count -= 1
                    self.stats.confirmed += 1
                    if self._probing:
                        # The probe arrived: the detector is subscribed on this broker. Stream on.
                        self._probing = False
                        self._probe_wait = self.probe_s
                    self._progress_at = time.monotonic()
            self._lock.notify_all()

    def _drop_paho_backlog(self) -> None:
        """Forget the QoS 1 messages paho keeps for a resend (detector confirmation: the spool has them).

        paho 2.2 has no public call for this; ``_out_messages`` and ``_inflight_messages`` are the state its
        reconnect resends from (read from its source). Status messages in it are dropped too: the next
        one follows within the status interval.
        """
        client = self.client
        with client._out_message_mutex:
            client._out_messages.clear()
            client._inflight_messages = 0

    def _restart_from_oldest(self) -> None:
        """Detector confirmation (caller holds _lock): send again from the oldest row, starting with a probe."""
        self._unconfirmed.clear()
        self._unconfirmed_count = 0
        # Not waited for any more (a PUBACK for one of them is kept as early and expires): a message another
        # publisher's on_connect dropped from paho's backlog (replay: one client, several devices) would
        # otherwise hold the probe back for good.
        self._inflight.clear()
        self._last_row = 0
        self._probing = True
        self._progress_at = time.monotonic()
        self.stats.probes += 1

    # -- bookkeeping (caller holds _lock) ----------------------------------------------------------

    def _register(self, mid: int, sent: _Sent) -> None:
        early = self._early.pop(mid, None)
        if self.confirm == "detector" and sent.generation != self._generation:
            return  # handed over as the connection dropped: it is sent again from the spool anyway
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
        if self.confirm == "detector":
            if sent.row is not None:
                self.stats.acknowledged += 1  # a free slot in the window; the frame waits for the detector
            return
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

    def _confirm_room(self) -> int:
        """Detector confirmation: how many more frames may be sent before the detector confirms some."""
        if self._probing:
            return 0 if self._unconfirmed_count or self._inflight else 1
        return max(0, self.confirm_window - self._unconfirmed_count)

    def _confirm_overdue(self) -> bool:
        """Detector confirmation: frames wait for a confirmation that has not come (probe again)."""
        if not self._unconfirmed_count or not self._connected:
            return False
        wait = self._probe_wait if self._probing else self.stall_s
        return time.monotonic() - self._progress_at >= wait

    def _barrier_due(self) -> bool:
        if self.confirm == "detector":
            return False
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
        if self.confirm == "detector":
            return self._confirm_overdue() or (room and new_rows and self._confirm_room() > 0)
        return (room and (bool(self._resend) or new_rows)) or self._barrier_due()

    def _run_pump(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._work_ready():
                    self._lock.wait(0.1 if (self._acked or self._stale or self._unconfirmed_count) else 1.0)
                if self._stopping:
                    return
                confirmed, self._confirmed = self._confirmed, []
                resend: list[int] = []
                room = 0
                barrier = False
                if self.confirm == "detector" and self._confirm_overdue():
                    if self._probing:
                        self._probe_wait = min(self._probe_wait * 2, PROBE_MAX_S)
                    else:
                        log.warning(
                            "no confirmation from the detector for %.0f s (%d frame(s) wait for one); sending "
                            "again from the oldest",
                            self.stall_s,
                            self._unconfirmed_count,
                        )
                    self._restart_from_oldest()
                if self._may_send():
                    room = max(0, self.window - len(self._inflight))
                    if self.confirm == "detector":
                        room = min(room, self._confirm_room())
                    self._resend.sort()
                    resend, self._resend = self._resend[:room], self._resend[room:]
                    barrier = self._barrier_due()
                    self._barrier_inflight = self._barrier_inflight or barrier
                last_row = self._last_row
                generation = self._generation
            try:
                self._pump_once(confirmed, resend, room, last_row, barrier, generation)
            except Exception as err:  # the pump must survive anything for an overnight run
                log.exception("spool pump: %s; retrying in 1 s", err)
                with self._lock:
                    self._resend.extend(resend)
                    self._barrier_inflight = False
                time.sleep(1.0)

    def _pump_once(
        self, confirmed: list[int], resend: list[int], room: int, last_row: int, barrier: bool, generation: int
    ) -> None:
        if confirmed:
            self.spool.delete(confirmed)
            with self._lock:
                self._lock.notify_all()  # flush() waits on spool.count
        if resend:
            self._send_rows(self.spool.get(resend), again=True)
        if room > len(resend):
            self._send_rows(self.spool.after(last_row, room - len(resend)), again=False, generation=generation)
        if barrier:
            self._send_barrier()

    def _send_rows(self, rows: list[SpoolRow], *, again: bool, generation: int | None = None) -> None:
        for row in rows:
            with self._lock:
                if self.confirm == "detector" and generation is not None and generation != self._generation:
                    return  # reconnected meanwhile: the pump starts again from the oldest row (on_connect)
                if not self._connected:  # lost the connection meanwhile: keep the rest for the reconnect
                    if not again:
                        return  # not handed over, so the pump picks these up again after _last_row
                    self._resend.append(row.id)
                    continue
                sent = _Sent(row.id, self._acks, self._generation)
                self._last_row = max(self._last_row, row.id)
                if self.confirm == "detector":
                    self._unconfirmed.setdefault(row.topic, deque()).append((row.seq, row.id))
                    self._unconfirmed_count += 1
            info = self.client.publish(row.topic, row.payload, qos=1)  # no lock held: see module docstring
            with self._lock:
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.error(
                        "publishing spooled frame on %s failed: %s; retrying", row.topic, mqtt.error_string(info.rc)
                    )
                    self._resend.append(row.id)
                    continue
                self.stats.sent += 1
                if again or row.id <= self._initial_last_id or row.id <= self._max_sent:
                    self.stats.resent += 1
                self._max_sent = max(self._max_sent, row.id)
                self._register(info.mid, sent)

    def _send_barrier(self) -> None:
        with self._lock:
            sent = _Sent(None, self._acks, self._generation, barrier=True)
        info = self.client.publish(self.sync_topic, b"", qos=1)
        with self._lock:
            self.stats.barriers += 1
            self._register(info.mid, sent)
