"""Store-and-forward against a real mosquitto: broker crashes, collector crashes, outages at start-up.

The receiving side is a persistent-session subscriber (fixed client id, ``clean_start=False``, QoS 1), as
the detector is. Duplicates on the wire are allowed (a resent frame may already have arrived); every test
checks that every sequence number arrives at least once, and that the detector's rule (drop seq below
the next expected one) yields every frame exactly once, in order, with no gap.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from collector.publisher import FramePublisher
from collector.spool import Spool
from crampwatch import wire
from crampwatch.errors import BrokerError
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.mqtt import connect, make_client
from crampwatch.topics import confirm_topic
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

PREFIX = "cramp/v1"
PATIENT = "p1"
DEVICE = "dev1"
TOPIC = f"{PREFIX}/{PATIENT}/{DEVICE}/emg"
REPO = Path(__file__).resolve().parents[2]


def make_frame(seq: int) -> Frame:
    data = np.full((20, 1), seq % 30000, dtype=np.int16)
    return Frame(StreamKind.EMG, seq, seq * 100_000_000, 200.0, (Channel("calf", "uV", 0.5),), data)


class Subscriber:
    """A detector-like receiver: persistent session, QoS 1, records the seq of every message in order."""

    def __init__(self, url: str, client_id: str) -> None:
        self.seqs: list[int] = []
        self._cond = threading.Condition()
        self.client = make_client(url, client_id)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        connect(self.client)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe(TOPIC, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.seqs.append(wire.decode(bytes(msg.payload)).seq)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout_s: float) -> None:
        """Wait until all seqs 0..n-1 have arrived at least once."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while set(range(n)) - set(self.seqs):
                left = deadline - time.monotonic()
                assert left > 0, f"missing after {timeout_s} s: {sorted(set(range(n)) - set(self.seqs))[:20]}"
                self._cond.wait(left)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber(mosquitto: MosquittoServer) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.url, "test-detector")
    # Let the SUBACK land before anything is published.
    time.sleep(0.3)
    yield sub
    sub.close()


def detector_view(seqs: list[int]) -> tuple[list[int], int, list[int]]:
    """What the detector keeps (drop seq < next expected), how many it drops, and any gaps it sees."""
    kept: list[int] = []
    gaps: list[int] = []
    expected = 0
    for seq in seqs:
        if seq < expected:
            continue
        if seq > expected:
            gaps.extend(range(expected, seq))
        kept.append(seq)
        expected = seq + 1
    return kept, len(seqs) - len(kept), gaps


def publisher(url: str, spool: Spool, client_id: str = "test-collector") -> FramePublisher:
    client = make_client(url, client_id)
    client.reconnect_delay_set(1, 1)
    connect(client)
    return FramePublisher(client, PREFIX, PATIENT, DEVICE, spool=spool)


def stop(pub: FramePublisher) -> None:
    pub.close()
    pub.client.loop_stop()
    pub.client.disconnect()


def test_broker_killed_mid_stream_every_frame_arrives_once_in_order(
    mosquitto: MosquittoServer, subscriber: Subscriber, tmp_path: Path
) -> None:
    n, kill_at, restart_at = 600, 200, 400
    with Spool(tmp_path / "spool.db") as spool:
        pub = publisher(mosquitto.url, spool)
        for seq in range(n):
            if seq == kill_at:
                mosquitto.kill()
            if seq == restart_at:
                mosquitto.start()
            pub.publish(make_frame(seq))
            time.sleep(0.004)  # ~250 frames/s, so the outage lasts ~0.8 s of stream
        pub.flush(timeout_s=30)
        assert spool.count == 0
        stop(pub)
    subscriber.wait_for(n, timeout_s=15)
    kept, duplicates, gaps = detector_view(subscriber.seqs)
    assert gaps == []
    assert kept == list(range(n))
    print(f"broker kill: {len(subscriber.seqs)} messages for {n} frames, {duplicates} duplicate(s)")
    assert pub.stats.acknowledged >= n


def test_flush_means_saved_by_the_broker_even_if_it_is_killed_right_after(
    mosquitto: MosquittoServer, subscriber: Subscriber, tmp_path: Path
) -> None:
    # The subscriber is offline, so the broker must keep every frame in its persisted session queue.
    subscriber.close()
    n = 300
    with Spool(tmp_path / "spool.db") as spool:
        pub = publisher(mosquitto.url, spool)
        for seq in range(n):
            pub.publish(make_frame(seq))
        pub.flush(timeout_s=30)
        mosquitto.kill()  # SIGKILL straight after flush(): no clean save
        stop(pub)
    mosquitto.start()
    sub = Subscriber(mosquitto.url, "test-detector")
    try:
        sub.wait_for(n, timeout_s=15)
        assert detector_view(sub.seqs)[0] == list(range(n))
    finally:
        sub.close()


def test_frames_spooled_while_the_broker_was_never_reachable_are_sent_by_the_next_run(
    mosquitto: MosquittoServer, subscriber: Subscriber, tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    dead = make_client("mqtt://127.0.0.1:1", "never-connected")  # nothing listens on port 1
    with Spool(path) as spool:
        pub = FramePublisher(dead, PREFIX, PATIENT, DEVICE, spool=spool)
        for seq in range(50):
            pub.publish(make_frame(seq))
        pub.close()
    with Spool(path) as spool:
        pub = publisher(mosquitto.url, spool)
        assert pub.next_seq(StreamKind.EMG) == 50  # numbering continues across runs
        for seq in range(50, 80):
            pub.publish(make_frame(seq))
        pub.flush(timeout_s=30)
        assert pub.stats.resent == 50
        stop(pub)
    subscriber.wait_for(80, timeout_s=10)
    assert subscriber.seqs == list(range(80))


_COLLECTOR_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from crampwatch.mqtt import connect, make_client
    from collector.publisher import FramePublisher
    from collector.spool import Spool
    from crampwatch.frames import StreamKind
    from tests.integration.test_spool_broker import make_frame, PREFIX, PATIENT, DEVICE

    url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = make_client(url, "test-collector")
    connect(client)
    pub = FramePublisher(client, PREFIX, PATIENT, DEVICE, spool=Spool(path))
    start = pub.next_seq(StreamKind.EMG)
    print("start", start, flush=True)
    for seq in range(start, n):
        pub.publish(make_frame(seq))
        print("spooled", seq, flush=True)  # printed only once the frame is on disk
        time.sleep(0.005)
    pub.flush(60)
    print("done", pub.stats.resent, flush=True)
    """
)


def _start_collector(url: str, spool: Path, n: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", _COLLECTOR_SCRIPT, url, str(spool), str(n)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def test_collector_killed_mid_stream_loses_nothing_it_had_spooled(
    mosquitto: MosquittoServer, subscriber: Subscriber, tmp_path: Path
) -> None:
    n, kill_after = 400, 150
    spool = tmp_path / "spool.db"
    first = _start_collector(mosquitto.url, spool, n)
    assert first.stdout is not None
    last_spooled = -1
    for line in first.stdout:
        if line.startswith("spooled"):
            last_spooled = int(line.split()[1])
            if last_spooled >= kill_after:
                first.send_signal(signal.SIGKILL)
                break
    first.wait(10)
    first.stdout.close()
    assert first.returncode == -signal.SIGKILL

    second = _start_collector(mosquitto.url, spool, n)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    start = int(out.split("start ", 1)[1].split()[0])
    assert start > last_spooled  # it continued the numbering after everything the first run spooled
    resent = int(out.split("done ", 1)[1].split()[0])

    subscriber.wait_for(n, timeout_s=15)
    kept, duplicates, gaps = detector_view(subscriber.seqs)
    assert gaps == []
    assert kept == list(range(n))
    print(f"collector kill at seq {last_spooled}: resent {resent} spooled frame(s), {duplicates} duplicate(s)")


# -- detector confirmation (confirm="detector"): frames leave the spool only when the detector confirms ----


class Confirmer(Subscriber):
    """A detector stand-in for confirm="detector": besides recording, it confirms the newest seq it got
    (as the detector does after its commit), every ``every_s``, on the device's confirm topic."""

    def __init__(self, url: str, client_id: str, every_s: float = 0.2) -> None:
        self._stop = threading.Event()
        super().__init__(url, client_id)
        self._thread = threading.Thread(target=self._confirm_loop, args=(every_s,), daemon=True)
        self._thread.start()

    def _confirm_loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            with self._cond:
                newest = self.seqs[-1] if self.seqs else -1
            if newest >= 0:  # again even if unchanged: the real detector confirms again on duplicates
                self.client.publish(
                    confirm_topic(PREFIX, PATIENT, DEVICE), wire.encode_confirm({StreamKind.EMG: newest}), qos=1
                )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        super().close()


def detector_publisher(url: str, spool: Spool, client_id: str = "test-collector") -> FramePublisher:
    client = make_client(url, client_id)
    client.reconnect_delay_set(1, 1)
    connect(client)
    return FramePublisher(client, PREFIX, PATIENT, DEVICE, spool=spool, confirm="detector", probe_s=0.5)


def test_detector_confirmation_keeps_frames_until_confirmed_and_deletes_them_after(
    mosquitto: MosquittoServer, subscriber: Subscriber, tmp_path: Path
) -> None:
    """The broker's PUBACK deletes nothing; a confirmation deletes the frames up to its seq, no further."""
    confirmer = make_client(mosquitto.url, "test-confirmer")
    connect(confirmer)

    def confirm(seq: int) -> None:
        confirmer.publish(
            confirm_topic(PREFIX, PATIENT, DEVICE), wire.encode_confirm({StreamKind.EMG: seq}), qos=1
        ).wait_for_publish(10)

    def wait(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            time.sleep(0.02)

    with Spool(tmp_path / "spool.db") as spool:
        pub = detector_publisher(mosquitto.url, spool)
        try:
            for seq in range(10):
                pub.publish(make_frame(seq))
            # Probing: only the oldest frame goes out until the detector confirms it; the broker's PUBACK
            # for it deletes nothing.
            wait(lambda: pub.stats.acknowledged >= 1, "the PUBACK of the probe")
            subscriber.wait_for(1, 10)
            time.sleep(0.3)  # a PUBACK-triggered deletion would have happened by now
            assert spool.count == 10 and subscriber.seqs == [0]
            confirm(0)  # the probe is confirmed: the detector is there, the rest streams
            subscriber.wait_for(10, 10)
            wait(lambda: spool.count == 9, "frame 0 deleted")
            time.sleep(0.3)
            assert spool.count == 9  # all PUBACKed by now, none confirmed: all kept
            confirm(4)
            wait(lambda: spool.count == 5, "frames 1-4 deleted")
            assert [row.seq for row in spool.after(0, 100)] == [5, 6, 7, 8, 9]
            confirm(9)
            pub.flush(10)  # returns once the detector confirmed everything
            assert spool.count == 0 and pub.stats.confirmed == 10
        finally:
            stop(pub)
            confirmer.loop_stop()
            confirmer.disconnect()


def test_detector_confirmation_broker_killed_without_any_save_every_frame_arrives_in_order(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """No per-change save: a SIGKILL loses the broker's sessions and queues, and the receiver's
    subscription with them. The spool resends from the oldest unconfirmed frame after a probe, so the
    detector's rule still yields every frame once, in order, with no gap."""
    broker = MosquittoServer(tmp_path_factory.mktemp("mosquitto"), per_change_save=False, autosave_interval=60)
    broker.start()
    n, kill_at = 3000, 1200
    receiver = Confirmer(broker.url, "test-detector")
    time.sleep(0.3)
    try:
        with Spool(tmp_path / "spool.db") as spool:
            pub = detector_publisher(broker.url, spool)
            try:
                for seq in range(n):
                    pub.publish(make_frame(seq))
                deadline = time.monotonic() + 60
                while len(receiver.seqs) < kill_at:  # mid-stream: frames in flight, queued and unconfirmed
                    assert time.monotonic() < deadline, f"only {len(receiver.seqs)} frames arrived"
                    time.sleep(0.005)
                unconfirmed = spool.count
                broker.kill()
                broker.start()
                pub.flush(120)
                stats = pub.stats
            finally:
                stop(pub)
        kept, duplicates, gaps = detector_view(receiver.seqs)
    finally:
        receiver.close()
        broker.kill()
    print(f"broker kill, no save: {len(receiver.seqs)} messages for {n} frames, {duplicates} duplicate(s); {stats}")
    assert gaps == []
    assert kept == list(range(n))
    assert stats.probes >= 2 and 0 < unconfirmed < n


def test_detector_confirmation_without_a_confirming_detector_keeps_everything_and_says_why(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """Nobody confirms (no detector, or one with --confirm-s 0): the frames stay, and flush() names the cause."""
    with Spool(tmp_path / "spool.db") as spool:
        pub = detector_publisher(mosquitto.url, spool)
        try:
            for seq in range(5):
                pub.publish(make_frame(seq))
            with pytest.raises(BrokerError, match=r"not confirmed by the detector .* use --confirm broker"):
                pub.flush(1.0)
            assert spool.count == 5
        finally:
            stop(pub)
