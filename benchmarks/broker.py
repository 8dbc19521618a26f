"""Broker path benchmark (issue 16): durable QoS 1 frames/s from collectors to the detector, and loss across
a broker SIGKILL. ``python -m benchmarks.broker [--seconds S] [--variants NAME,...]``.

Each variant starts a real broker on a free port with its own persistence directory, then:

* one **subscriber process** stands in for the detector: fixed client id, persistent session
  (``clean_start=False``, session expiry 1 h), QoS 1 on ``bench/#``; it counts the distinct
  (topic, sequence number) pairs it received;
* ``--processes`` **publisher processes** with ``--clients`` paho clients each stand in for collectors:
  QoS 1, at most ``--window`` unacknowledged frames per client (as a collector tracks each frame to its
  PUBACK), publishing real wire-v1 frames of the simulated sensor (2 EMG channels at 1000 Hz, int32
  counts, and 3 ACC axes at 50 Hz, alternately) as fast as the broker acknowledges them;
* halfway through, the broker is **SIGKILLed** and restarted on the same port and persistence directory;
  paho resends what was not acknowledged, and the subscriber resumes its session.

Reported per variant: frames/s acknowledged before the kill (the throughput), after the restart, frames
acknowledged in all, frames the subscriber got, and **lost** = acknowledged but never delivered (a PUBACK
that did not mean durable), plus the CPU share of the broker, the subscriber and the publishers (of one
core, over the publishing time), and the **end-to-end** rate: distinct frames the subscriber got per
second from the start of publishing to its last new frame (a subscriber that falls behind shows here, not
in the PUBACK rate). Duplicates (QoS 1 resends) are not loss.

Variants (mosquitto 2.0.11 unless named):

* ``on-changes``: the deployed config (``deploy/mosquitto/mosquitto.conf``): ``persistence true``,
  ``autosave_on_changes true``, ``autosave_interval 1``: the database is rewritten on every change;
* ``interval-1``: ``autosave_interval 1`` without ``autosave_on_changes``: saved once a second;
* ``on-changes-1s`` / ``interval-1-1s``: the same with 1 s frames instead of 0.25 s (4x fewer, 4x larger);
* ``no-persistence``: no database at all: the ceiling of broker and clients on this machine;
* ``nats``: NATS JetStream's MQTT gateway (nats-server 2.9, MQTT 3.1.1; QoS 1 messages are stored in a
  JetStream file store before the PUBACK), if ``nats-server`` is installed.
* ``confirm``: **detector confirmation** (docs/reliability.md): mosquitto without per-change save
  (``autosave_interval 60``), and the durability moves to the ends. The subscriber journals every frame to
  SQLite (WAL, ``synchronous=FULL``) with group commit as detector/journal.py does, acknowledges after the
  commit (manual acks), and then confirms, per publisher client and at most every 0.2 s, the newest
  journalled sequence number on ``bench/<client>/confirm`` (QoS 1). Publishers keep every frame until it is
  confirmed (in memory here; collector/spool.py keeps them on disk), at most ``--confirm-window`` per
  client, and after a reconnect send again from the oldest unconfirmed one, starting with a single probe
  frame until it is confirmed, as collector/publisher.py does. Here **frames/s** counts *confirmed*
  frames (journalled at the far end), **acked** the confirmed frames, and **lost** = confirmed but not in
  the subscriber's journal;
* ``confirm-1s``: the same with 1 s frames; ``confirm-no-persistence``: the same with ``persistence false``.

Writes ``--json`` (default ``broker-bench.json``) and prints a table. Numbers depend on the machine: run
it on an otherwise idle one before drawing conclusions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from crampwatch import wire
from crampwatch.mqtt import connect, make_client
from crampwatch.simulate import Night, SimParams
from tests.servers import MosquittoServer, ServerProcess, find_binary, free_port, port_open

TOPIC_ROOT = "bench"
SUBSCRIBER_ID = "bench-detector"
_SEQ = struct.Struct("<Q")  # wire v1: sequence number at offset 8
_SEQ_OFFSET = 8


@dataclass(frozen=True)
class Variant:
    name: str
    broker: str  # "mosquitto" or "nats"
    frame_s: float
    config: tuple[str, ...] = ()  # mosquitto lines replacing the persistence ones of MosquittoServer
    confirm: bool = False  # detector confirmation: a journalling, confirming subscriber; publishers keep frames


VARIANTS = {
    v.name: v
    for v in (
        Variant("on-changes", "mosquitto", 0.25, ("autosave_interval 1", "autosave_on_changes true")),
        Variant("interval-1", "mosquitto", 0.25, ("autosave_interval 1", "autosave_on_changes false")),
        Variant("on-changes-1s", "mosquitto", 1.0, ("autosave_interval 1", "autosave_on_changes true")),
        Variant("interval-1-1s", "mosquitto", 1.0, ("autosave_interval 1", "autosave_on_changes false")),
        Variant("no-persistence", "mosquitto", 0.25, ("persistence false",)),
        Variant("nats", "nats", 0.25),
        Variant("nats-1s", "nats", 1.0),
        Variant("confirm", "mosquitto", 0.25, ("autosave_interval 60",), confirm=True),
        Variant("confirm-1s", "mosquitto", 1.0, ("autosave_interval 60",), confirm=True),
        Variant("confirm-no-persistence", "mosquitto", 0.25, ("persistence false",), confirm=True),
    )
}


@dataclass
class Result:
    variant: str
    frame_s: float
    frame_bytes: int  # mean over EMG and ACC frames
    publishers: int
    frames_per_s_before_kill: float
    frames_per_s_after_restart: float
    acked: int
    delivered: int
    lost: int
    duplicates: int
    broker_down_s: float
    catch_up_s: float  # from the end of publishing to the subscriber's last new frame
    broker_cpu_pct: float
    note: str = ""
    subscriber_cpu_pct: float = 0.0  # the detector stand-in (confirm variants: journal + confirmations)
    #: Distinct frames the subscriber got (confirm: journalled) per second, from the start of publishing to
    #: its last new frame: the rate the whole path sustained, whoever was the bottleneck.
    end_to_end_frames_per_s: float = 0.0
    publishers_cpu_pct: float = 0.0


# ------------------------------------------------------------------------------------------------ brokers


class TunedMosquitto(MosquittoServer):
    """The test suite's mosquitto with the persistence lines of a variant instead of its own."""

    def __init__(self, workdir: Path, lines: Sequence[str]) -> None:
        super().__init__(workdir)
        replaced = ("autosave_interval", "autosave_on_changes", "persistence ", "persistence_location")
        keep = [line for line in self.conf_path.read_text().splitlines() if not line.startswith(replaced)]
        if "persistence false" not in lines:
            keep += ["persistence true", f"persistence_location {workdir / 'persistence'}"]
        # The deployed config's queue limit: a slow detector must not make the broker drop frames.
        keep = [line for line in keep if not line.startswith("max_queued_messages")]
        # The variant's lines last: they may override these (mosquitto takes the last value).
        keep += ["max_queued_messages 1000000", "max_inflight_messages 1000", *lines]
        self.conf_path.write_text("\n".join(keep) + "\n")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid


class NatsServer(ServerProcess):
    """nats-server with JetStream (file store) and its MQTT gateway (MQTT 3.1.1 only)."""

    name = "nats-server"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.binary = find_binary("nats-server")
        self.client_port = free_port()
        self.port = free_port()  # MQTT
        self.conf_path = workdir / "nats.conf"
        self.conf_path.write_text(
            f"""\
listen: "{self.host}:{self.client_port}"
server_name: "bench"
jetstream {{
  store_dir: "{workdir / "jetstream"}"
}}
mqtt {{
  listen: "{self.host}:{self.port}"
  max_ack_pending: 1000
}}
"""
        )

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf_path), "-l", str(self.log_path)]

    def is_ready(self) -> bool:
        return port_open(self.host, self.port)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ clients


def _client(port: int, client_id: str, v5: bool) -> mqtt.Client:
    """A client as the services make them (MQTT v5, persistent session); MQTT 3.1.1 for NATS, which has no
    v5. Reconnects every second, so the restart is measured and not paho's backoff."""
    if v5:
        client = make_client(f"mqtt://127.0.0.1:{port}", client_id)
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    return client


def _connect(client: mqtt.Client, port: int, v5: bool) -> None:
    """Connect, start the network thread, and wait for the CONNACK."""
    if v5:
        connect(client)
        return
    connected = threading.Event()
    previous = client.on_connect

    def on_connect(*args: Any) -> None:
        connected.set()
        if previous is not None:
            previous(*args)

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"no CONNACK from 127.0.0.1:{port} within 10 s")


def _frames(frame_s: float) -> list[bytes]:
    """A few seconds of the simulated sensor as wire frames, EMG and ACC alternately (device order)."""
    from collector.sources import SimulatedSource  # the collector's own source: what a collector sends

    night = Night(8.0, 1, SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0))
    return [wire.encode(f) for f in SimulatedSource(night, frame_s=frame_s).frames()][:-2]


def _with_seq(template: bytes, seq: int) -> bytes:
    """``template`` with its sequence number set (and its CRC fixed), so each frame is distinct."""
    body = bytearray(template[:-4])
    _SEQ.pack_into(body, _SEQ_OFFSET, seq)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def _subscriber(port: int, v5: bool, ready: Any, stop: Any, received: Synchronized[int], out: Any) -> None:
    seen: set[tuple[str, int]] = set()
    total = 0
    lock = threading.Lock()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal total
        key = (msg.topic, _SEQ.unpack_from(msg.payload, _SEQ_OFFSET)[0])
        with lock:
            total += 1
            seen.add(key)
            received.value = len(seen)

    client = _client(port, SUBSCRIBER_ID, v5)
    client.on_message = on_message
    subscribed: list[bool] = []

    def on_connect(c: mqtt.Client, *args: Any) -> None:
        # The detector subscribes on every connect; RESUBSCRIBE=0 subscribes on the first only (the session
        # keeps the subscription), to tell a broker that loses a session from one that resets it on SUBSCRIBE.
        if not subscribed or os.environ.get("RESUBSCRIBE", "1") == "1":
            subscribed.append(True)
            c.subscribe(f"{TOPIC_ROOT}/#", qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda c, u, mid, r, p: ready.set()
    _connect(client, port, v5)
    stop.wait()
    client.loop_stop()
    with lock:
        out.put((sorted(seen), total))


def _publisher(
    port: int,
    v5: bool,
    ids: Sequence[str],
    frames: Sequence[bytes],
    window: int,
    go: Any,
    deadline_s: float,
    acked_count: Synchronized[int],
    out: Any,
) -> None:
    """Publish as fast as PUBACKs come back until ``deadline_s`` after ``go``; report what was acked."""
    clients = []
    sent: list[dict[int, int]] = []  # per client: mid -> seq, until its PUBACK
    early: list[set[int]] = []  # per client: mids acknowledged before publish() returned
    acked: list[list[int]] = []
    # Never held while calling paho: paho runs on_publish under its own lock, which publish() takes too.
    cond = threading.Condition()

    def count_ack() -> None:
        with acked_count.get_lock():
            acked_count.value += 1

    for cid in ids:
        client = _client(port, cid, v5)
        mids: dict[int, int] = {}
        soon: set[int] = set()
        done: list[int] = []

        def on_publish(
            c: mqtt.Client,
            u: object,
            mid: int,
            rc: object,
            p: object,
            m: dict[int, int] = mids,
            e: set[int] = soon,
            d: list[int] = done,
        ) -> None:
            with cond:
                seq = m.pop(mid, None)
                if seq is None:
                    e.add(mid)
                else:
                    d.append(seq)
                    count_ack()
                cond.notify_all()

        client.on_publish = on_publish
        _connect(client, port, v5)
        clients.append(client)
        sent.append(mids)
        early.append(soon)
        acked.append(done)
    go.wait()
    end = time.monotonic() + deadline_s
    seq = 0
    while time.monotonic() < end:
        progressed = False
        for i, client in enumerate(clients):
            with cond:
                if len(sent[i]) >= window:
                    continue
            payload = _with_seq(frames[seq % len(frames)], seq)
            info = client.publish(f"{TOPIC_ROOT}/{ids[i]}/emg", payload, qos=1)
            with cond:
                if info.mid in early[i]:
                    early[i].discard(info.mid)
                    acked[i].append(seq)
                    count_ack()
                else:
                    sent[i][info.mid] = seq
            seq += 1
            progressed = True
        if not progressed:
            with cond:
                cond.wait(0.01)
    # Drain: what is still in flight is acked once the broker is back (paho resends it).
    drain_end = time.monotonic() + 60
    with cond:
        while any(sent) and time.monotonic() < drain_end:
            cond.wait(0.1)
    for client in clients:
        client.loop_stop()
        client.disconnect()
    out.put([(f"{TOPIC_ROOT}/{cid}/emg", done, len(left)) for cid, done, left in zip(ids, acked, sent, strict=True)])


# ------------------------------------------------------------------------- detector confirmation (confirm)

CONFIRM_EVERY_S = 0.2
COMMIT_S = 0.1
PROBE_S = 1.0


def _confirm_topic(cid: str) -> str:
    return f"{TOPIC_ROOT}/{cid}/confirm"


def _journalling_subscriber(
    port: int, journal: str, ready: Any, stop: Any, received: Synchronized[int], out: Any
) -> None:
    """The detector stand-in of the confirm variants: journal, group-commit, acknowledge, then confirm.

    As detector/service.py and detector/journal.py do it: paho's thread only enqueues; one worker journals
    each frame in an open transaction, commits when the queue runs dry or COMMIT_S has passed (one fsync,
    ``synchronous=FULL``), then acknowledges the frames (manual acks) and confirms to each publisher client
    the newest sequence number it journalled, at most every CONFIRM_EVERY_S per client.
    """
    import queue
    import sqlite3

    inbox: queue.Queue[tuple[str, bytes, int, int]] = queue.Queue()
    client = make_client(f"mqtt://127.0.0.1:{port}", SUBSCRIBER_ID, manual_ack=True)
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    client.on_message = lambda c, u, m: inbox.put((m.topic, bytes(m.payload), m.mid, m.qos))
    client.on_connect = lambda c, *a: c.subscribe(f"{TOPIC_ROOT}/+/emg", qos=1)  # every connect: see RESUBSCRIBE
    client.on_subscribe = lambda c, u, mid, r, p: ready.set()
    db = sqlite3.connect(journal, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB)")
    _connect(client, port, True)
    seen: set[tuple[str, int]] = set()
    total = 0
    newest: dict[str, int] = {}  # topic -> newest journalled seq, committed, not yet confirmed
    last_confirm: dict[str, float] = {}
    rows: list[tuple[str, bytes]] = []
    acks: list[tuple[int, int]] = []
    pending: dict[str, int] = {}
    last_commit = time.monotonic()
    while not stop.is_set():
        try:
            item = inbox.get(timeout=0.05)
            while True:
                topic, payload, mid, qos = item
                rows.append((topic, payload))
                acks.append((mid, qos))
                seq = _SEQ.unpack_from(payload, _SEQ_OFFSET)[0]
                pending[topic] = seq
                seen.add((topic, seq))
                total += 1
                if len(rows) >= 4000:
                    break
                item = inbox.get_nowait()
        except queue.Empty:
            pass
        now = time.monotonic()
        if rows and (inbox.empty() or now - last_commit >= COMMIT_S):
            db.execute("BEGIN")
            db.executemany("INSERT INTO journal (topic, payload) VALUES (?, ?)", rows)
            db.execute("COMMIT")  # one fsync for the whole group
            last_commit = now
            for mid, qos in acks:
                client.ack(mid, qos)
            newest.update(pending)
            rows, acks, pending = [], [], {}
            received.value = len(seen)
        for topic in list(newest):
            if now - last_confirm.get(topic, 0.0) >= CONFIRM_EVERY_S:
                cid = topic.split("/")[1]
                client.publish(_confirm_topic(cid), str(newest.pop(topic)).encode(), qos=1)
                last_confirm[topic] = now
    client.loop_stop()
    journalled = {
        (str(t), _SEQ.unpack_from(p, _SEQ_OFFSET)[0]) for t, p in db.execute("SELECT topic, payload FROM journal")
    }
    db.close()
    assert journalled == seen
    out.put((sorted(seen), total))


class _Stream:
    """One publisher client in the confirm variants: what it keeps until the subscriber confirms it."""

    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.topic = f"{TOPIC_ROOT}/{cid}/emg"
        self.confirmed = -1  # newest confirmed seq: frames up to it are forgotten
        self.next_new = 0  # frames below it exist (were produced)
        self.send_at = 0  # next seq to hand to paho
        self.inflight: set[int] = set()  # mids not yet PUBACKed
        self.probing = True
        self.probe_sent = -1e9
        self.restart = False


def _confirming_publisher(
    port: int,
    ids: Sequence[str],
    frames: Sequence[bytes],
    window: int,
    confirm_window: int,
    go: Any,
    deadline_s: float,
    acked_count: Synchronized[int],
    out: Any,
) -> None:
    """Publish as fast as confirmations allow until ``deadline_s`` after ``go``; then wait until all are confirmed."""
    cond = threading.Condition()  # never held while calling paho (see _publisher)
    streams = [_Stream(cid) for cid in ids]
    clients = []
    for st in streams:
        client = _client(port, st.cid, True)

        def on_connect(c: mqtt.Client, u: object, f: object, why: object, p: object, st: _Stream = st) -> None:
            c.subscribe(_confirm_topic(st.cid), qos=1)
            with c._out_message_mutex:  # paho's backlog: resent from here, in order (collector/publisher.py)
                c._out_messages.clear()
                c._inflight_messages = 0
            with cond:
                st.restart = True
                cond.notify_all()

        def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object, st: _Stream = st) -> None:
            with cond:
                st.inflight.discard(mid)
                cond.notify_all()

        def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage, st: _Stream = st) -> None:
            seq = int(msg.payload)
            with cond:
                if seq > st.confirmed:
                    with acked_count.get_lock():
                        acked_count.value += seq - st.confirmed
                    st.confirmed = seq
                    if st.probing and seq >= st.send_at - 1:
                        st.probing = False
                cond.notify_all()

        client.on_connect = on_connect
        client.on_publish = on_publish
        client.on_message = on_message
        _connect(client, port, True)
        clients.append(client)
    go.wait()
    end = time.monotonic() + deadline_s
    drain_end = end + 60
    while time.monotonic() < drain_end:
        producing = time.monotonic() < end
        progressed = False
        for st, client in zip(streams, clients, strict=True):
            with cond:
                if st.restart:  # a (re)connect: everything unconfirmed again, from the oldest, probe first
                    st.restart, st.probing, st.inflight = False, True, set()
                    st.send_at, st.probe_sent = st.confirmed + 1, -1e9
                if st.probing:
                    due = time.monotonic() - st.probe_sent >= PROBE_S
                    if not due or not (st.send_at < st.next_new or producing):
                        continue
                    st.send_at, st.probe_sent = st.confirmed + 1, time.monotonic()
                elif (
                    len(st.inflight) >= window
                    or st.send_at - st.confirmed > confirm_window
                    or not (st.send_at < st.next_new or producing)
                ):
                    continue
                seq = st.send_at
            info = client.publish(st.topic, _with_seq(frames[seq % len(frames)], seq), qos=1)
            with cond:
                if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    st.inflight.add(info.mid)
                    st.send_at = seq + 1
                    st.next_new = max(st.next_new, st.send_at)
            progressed = True
        with cond:
            if not producing and all(st.confirmed >= st.next_new - 1 for st in streams):
                break
            if not progressed:
                cond.wait(0.01)
    for client in clients:
        client.loop_stop()
        client.disconnect()
    out.put([(st.topic, list(range(st.confirmed + 1)), st.next_new - st.confirmed - 1) for st in streams])


# ------------------------------------------------------------------------------------------------- runner


@contextlib.contextmanager
def _broker(variant: Variant, workdir: Path) -> Iterator[TunedMosquitto | NatsServer]:
    server: TunedMosquitto | NatsServer
    server = NatsServer(workdir) if variant.broker == "nats" else TunedMosquitto(workdir, variant.config)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def run_variant(
    variant: Variant,
    *,
    seconds: float,
    processes: int,
    clients: int,
    window: int,
    kill: bool = True,
    workdir: Path | None = None,
    settle_s: float = 60.0,
    confirm_window: int = 20000,
) -> Result:
    frames = _frames(variant.frame_s)
    v5 = variant.broker != "nats"
    ctx = mp.get_context("spawn")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            tmp = Path(stack.enter_context(TemporaryDirectory(prefix=f"broker-{variant.name}-")))
        else:
            tmp = workdir / variant.name
            tmp.mkdir(parents=True, exist_ok=True)
        server = stack.enter_context(_broker(variant, tmp))
        ready, stop, go = ctx.Event(), ctx.Event(), ctx.Event()
        received = ctx.Value("q", 0)
        acked_count = ctx.Value("q", 0)
        sub_out, pub_out = ctx.Queue(), ctx.Queue()
        if variant.confirm:
            journal = str(tmp / "journal.db")
            sub = ctx.Process(
                target=_journalling_subscriber, args=(server.port, journal, ready, stop, received, sub_out)
            )
        else:
            sub = ctx.Process(target=_subscriber, args=(server.port, v5, ready, stop, received, sub_out))
        sub.start()
        if not ready.wait(30):
            raise RuntimeError(f"{variant.name}: the subscriber did not subscribe within 30 s")
        pubs = [
            ctx.Process(
                target=_confirming_publisher,
                args=(
                    server.port,
                    [f"c{p}-{c}" for c in range(clients)],
                    frames,
                    window,
                    confirm_window,
                    go,
                    seconds,
                    acked_count,
                    pub_out,
                ),
            )
            if variant.confirm
            else ctx.Process(
                target=_publisher,
                args=(
                    server.port,
                    v5,
                    [f"c{p}-{c}" for c in range(clients)],
                    frames,
                    window,
                    go,
                    seconds,
                    acked_count,
                    pub_out,
                ),
            )
            for p in range(processes)
        ]
        for p in pubs:
            p.start()
        time.sleep(2.0)  # connections up
        assert sub.pid is not None
        clients_cpu0 = _cpu_s(sub.pid), sum(_cpu_s(p.pid or 0) for p in pubs)
        cpu0 = _cpu_s(server.pid)
        t0 = time.monotonic()
        go.set()
        time.sleep(seconds / 2)
        t_kill = time.monotonic()
        acked_before = acked_count.value
        cpu_before = _cpu_s(server.pid) - cpu0
        if kill:
            server.kill()
            server.start()
        t_back = time.monotonic()
        cpu1 = _cpu_s(server.pid)
        acked_at_restart = acked_count.value
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        t_end = time.monotonic()
        acked_after = acked_count.value - acked_at_restart
        cpu_after = _cpu_s(server.pid) - cpu1
        sub_cpu = _cpu_s(sub.pid) - clients_cpu0[0]
        pubs_cpu = sum(_cpu_s(p.pid or 0) for p in pubs) - clients_cpu0[1]
        published = [item for _ in pubs for item in pub_out.get(timeout=120)]
        for p in pubs:
            p.join(10)
        acked_keys = {(topic, seq) for topic, done, _ in published for seq in done}
        unacked = sum(left for _, _, left in published)
        # Let the subscriber catch up with everything acknowledged (or stop making progress).
        last, still = -1, time.monotonic()
        while received.value < len(acked_keys) and time.monotonic() - still < settle_s:
            if received.value != last:
                last, still = received.value, time.monotonic()
            time.sleep(0.2)
        stop.set()
        seen_list, total = sub_out.get(timeout=60)
        sub.join(10)
    seen = {(t, s) for t, s in seen_list}
    lost = len(acked_keys - seen)
    busy_s = (t_kill - t0) + (t_end - t_back)
    note = f"{unacked} frame(s) never acknowledged (publisher gave up after 60 s)" if unacked else ""
    return Result(
        variant=variant.name,
        frame_s=variant.frame_s,
        frame_bytes=round(sum(len(f) for f in frames) / len(frames)),
        publishers=processes * clients,
        frames_per_s_before_kill=round(acked_before / (t_kill - t0), 1),
        frames_per_s_after_restart=round(acked_after / max(1e-9, t_end - t_back), 1),
        acked=len(acked_keys),
        delivered=len(seen & acked_keys),
        lost=lost,
        duplicates=total - len(seen),
        broker_down_s=round(t_back - t_kill, 2),
        catch_up_s=round(max(0.0, still - t_end), 1),
        broker_cpu_pct=round(100 * (cpu_before + cpu_after) / busy_s, 1),
        note=note,
        subscriber_cpu_pct=round(100 * sub_cpu / (t_end - t0), 1),
        end_to_end_frames_per_s=round(len(seen & acked_keys) / (t_end - t0 + max(0.0, still - t_end)), 1),
        publishers_cpu_pct=round(100 * pubs_cpu / (t_end - t0), 1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time per variant (default 20)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)} (default all)"
    )
    parser.add_argument("--processes", type=int, default=2, help="publisher processes (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="MQTT clients per publisher process (default 4)")
    parser.add_argument("--window", type=int, default=200, help="unacknowledged frames per client (default 200)")
    parser.add_argument(
        "--confirm-window",
        type=int,
        default=20000,
        help="confirm variants: unconfirmed frames per client at most (default 20000)",
    )
    parser.add_argument(
        "--no-kill", dest="kill", action="store_false", help="do not SIGKILL the broker halfway (throughput only)"
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=60.0,
        help="after publishing, how long the subscriber may go without a new frame before the rest counts as "
        "lost (default 60; NATS redelivers unacknowledged messages only after its 30 s ack wait)",
    )
    parser.add_argument("--workdir", type=Path, help="keep broker data and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=Path("broker-bench.json"), help="where to write the results")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    results = []
    header = (
        f"{'variant':<16}{'frame':>6}{'bytes':>7}{'fr/s before':>12}{'fr/s after':>11}{'acked':>8}"
        f"{'delivered':>10}{'lost':>6}{'dups':>6}{'down s':>7}{'catch-up s':>11}{'broker CPU':>11}"
        f"{'sub CPU':>8}{'pubs CPU':>9}{'end-to-end fr/s':>16}"
    )
    print(header, flush=True)
    for name in names:
        variant = VARIANTS[name]
        if variant.broker == "nats":
            try:
                find_binary("nats-server")
            except RuntimeError as err:
                print(f"{name:<16}skipped: {err}", flush=True)
                continue
        r = run_variant(
            variant,
            seconds=args.seconds,
            processes=args.processes,
            clients=args.clients,
            window=args.window,
            kill=args.kill,
            workdir=args.workdir,
            settle_s=args.settle_s,
            confirm_window=args.confirm_window,
        )
        results.append(r)
        print(
            f"{r.variant:<16}{r.frame_s:>5g}s{r.frame_bytes:>7}{r.frames_per_s_before_kill:>12.0f}"
            f"{r.frames_per_s_after_restart:>11.0f}{r.acked:>8}{r.delivered:>10}{r.lost:>6}{r.duplicates:>6}"
            f"{r.broker_down_s:>7.2f}{r.catch_up_s:>11.1f}{r.broker_cpu_pct:>10.0f}%"
            f"{r.subscriber_cpu_pct:>7.0f}%{r.publishers_cpu_pct:>8.0f}%{r.end_to_end_frames_per_s:>16.0f}"
            + (f"  {r.note}" if r.note else ""),
            flush=True,
        )
    machine = {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "python": sys.version.split()[0]}
    args.json.write_text(
        json.dumps(
            {
                "machine": machine,
                "args": vars(args) | {"json": str(args.json)},
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
