"""The InfluxDB sink's error mapping, against the real influxd 1.6.7 (tests/servers.py) and its real errors.

Each test makes influxd (or the network) fail the way it does in production: a field type conflict
(400 partial write), a missing database (404), a wrong password (401), a user without write rights
(403), influxd down behind a proxy (503), nothing listening (connection refused), a server that never
answers (timeout). Only statuses influxd 1.6.7 never sends (408, 429, 413, 500, 3xx) come from a
stub HTTP server, still through the real influxdb-client and urllib3.

The last test is the point of it all: one refused event goes to the dead letter with its reason, and
the good events before and after it are stored.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from crampwatch.errors import SinkError
from detector.config import DetectorSettings
from detector.events import Event, Summary
from detector.model import Model
from detector.service import DetectorService
from detector.sinks import InfluxSink, SinkSetupError
from detector.sinks.mqtt import dead_letter_topic
from tests.servers import (
    InfluxServer,
    InfluxTestDatabase,
    InfluxV2WriteAdapter,
    MosquittoServer,
    free_port,
    quote_ident,
)

pytestmark = pytest.mark.integration

NOW_NS = (time.time_ns() // 10**9) * 10**9
# influxd keeps field types per shard (one shard group per week here), so a legacy integer field written
# a month ago conflicts only with points of that week: the "bad" event is a late replay of that night.
OLD_NS = NOW_NS - 30 * 86_400 * 10**9
ADMIN = ("admin", "adm1n-pw")
READER = ("reader", "r3ader-pw")


def event(start_ns: int, onset_s: float) -> Event:
    return Event("p1", "d1", "cramp", onset_s, onset_s + 12.5, 0.91, 240.0, subtype="calf", start_ns=start_ns)


def summary(time_ns: int) -> Summary:
    return Summary("p1", "d1", time_ns, 11.5, 0.02, True, fasciculations=1)


def raw_write(db: InfluxTestDatabase, line: str) -> None:
    """Write line protocol with influxd's own 1.x API, as a legacy writer would have."""
    query = urllib.parse.urlencode({"db": db.name, "precision": "n"})
    with urllib.request.urlopen(f"{db.influx_url}/write?{query}", data=line.encode(), timeout=10) as resp:
        assert resp.status == 204


def seed_legacy_integer_duration(db: InfluxTestDatabase) -> None:
    raw_write(db, f"cramp_events,patient=p0,device=d0,type=cramp duration_s=12i {OLD_NS}")


def sink_for(db: InfluxTestDatabase, **kwargs: Any) -> InfluxSink:
    return InfluxSink(db.v2_url, "x", "-", db.bucket, **kwargs)


def refused(write: Any, *args: Any) -> SinkError:
    with pytest.raises(SinkError) as raised:
        write(*args)
    return raised.value


def test_field_type_conflict_is_refused_data_and_is_raised_not_only_logged(influx_db: InfluxTestDatabase) -> None:
    seed_legacy_integer_duration(influx_db)
    sink = sink_for(influx_db)
    try:
        good, bad = event(NOW_NS, 5.0), event(OLD_NS, 60.0)
        err = refused(sink.write_events, [good, bad])
    finally:
        sink.close()
    assert err.retryable is False
    assert not isinstance(err, SinkSetupError)  # the data is at fault: SinkSet splits the batch
    assert err.sink == "influxdb"
    assert "400" in str(err) and "field type conflict" in str(err) and "dropped=1" in str(err)
    # A partial write stores the good points of the batch: resending them (when SinkSet splits the batch)
    # overwrites the same point, it never duplicates it. influxd writes each shard concurrently and answers
    # at the first shard's error, so the good point's shard (a new one, for this week) may land a moment
    # after the 400: wait for it rather than race it.
    query = f"SELECT count(confidence) FROM cramp_events WHERE time >= {NOW_NS}"
    deadline = time.monotonic() + 10.0
    while not (rows := influx_db.query(query)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows == [{"time": NOW_NS // 10**6, "count": 1}]


def test_missing_database_is_a_setup_error(influx_v2_adapter: InfluxV2WriteAdapter) -> None:
    sink = InfluxSink(influx_v2_adapter.url, "x", "-", "no_such_database/autogen")
    try:
        err = refused(sink.write_events, [event(NOW_NS, 1.0)])
    finally:
        sink.close()
    assert isinstance(err, SinkSetupError) and err.retryable is False
    assert "404" in str(err) and "database not found" in str(err) and "--influx-bucket" in str(err)


def test_database_unreachable_is_retryable_and_writes_resume(influx_db: InfluxTestDatabase) -> None:
    sink = sink_for(influx_db)
    try:
        influx_db.adapter.stop()  # nothing listens on the port now: connection refused
        err = refused(sink.write_events, [event(NOW_NS, 1.0)])
        assert err.retryable is True
        assert "unreachable" in str(err) and "NewConnectionError" in str(err)
        influx_db.adapter.start()
        sink.write_events([event(NOW_NS, 1.0)])
    finally:
        sink.close()
    assert len(influx_db.query("SELECT confidence FROM cramp_events")) == 1


def test_influxd_down_behind_a_proxy_is_retryable(influx_db: InfluxTestDatabase) -> None:
    sink = sink_for(influx_db)
    try:
        influx_db.server.kill()
        try:
            err = refused(sink.write_summaries, [summary(NOW_NS)])
        finally:
            influx_db.server.start()
        sink.write_summaries([summary(NOW_NS)])
    finally:
        sink.close()
    assert err.retryable is True
    assert "503" in str(err) and "will retry" in str(err)
    assert influx_db.query("SELECT count(emg_rms_uv) FROM cramp_summary")[0]["count"] == 1


def test_a_server_that_never_answers_times_out_retryable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel accepts connections; nobody ever reads or answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        sink = InfluxSink(url, "x", "-", "db/autogen", timeout_ms=300)
        try:
            started = time.monotonic()
            err = refused(sink.write_events, [event(NOW_NS, 1.0)])
        finally:
            sink.close()
    assert err.retryable is True
    assert "ReadTimeoutError" in str(err)
    assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def secured_influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InfluxServer, InfluxV2WriteAdapter]]:
    """An influxd that demands authentication, with a database and a read-only user on it."""
    server = InfluxServer(tmp_path_factory.mktemp("influxd-auth"), admin=ADMIN)
    server.start()
    try:
        server.create_database("secured")
        user, password = READER
        server.query(f"CREATE USER {quote_ident(user)} WITH PASSWORD '{password}'")
        server.query(f"GRANT READ ON {quote_ident('secured')} TO {quote_ident(user)}")
        with InfluxV2WriteAdapter(server.url) as adapter:
            yield server, adapter
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        (f"{ADMIN[0]}:not-the-password", 401, "authorization failed"),
        ("no-credentials-at-all", 401, "unable to parse authentication credentials"),
        (f"{READER[0]}:{READER[1]}", 403, "not authorized to write"),
    ],
    ids=["wrong-password", "no-credentials", "read-only-user"],
)
def test_refused_credentials_are_a_setup_error_and_never_logged(
    secured_influx: tuple[InfluxServer, InfluxV2WriteAdapter], token: str, status: int, message: str
) -> None:
    _, adapter = secured_influx
    sink = InfluxSink(adapter.url, token, "-", "secured/autogen")
    try:
        err = refused(sink.write_events, [event(NOW_NS, 1.0)])
    finally:
        sink.close()
    assert isinstance(err, SinkSetupError) and err.retryable is False
    assert f"{status}" in str(err) and message in str(err) and "--influx-token" in str(err)
    password = token.partition(":")[2]
    assert not password or password not in str(err)


def test_the_right_credentials_write(secured_influx: tuple[InfluxServer, InfluxV2WriteAdapter]) -> None:
    server, adapter = secured_influx
    sink = InfluxSink(adapter.url, f"{ADMIN[0]}:{ADMIN[1]}", "-", "secured/autogen")
    try:
        sink.write_events([event(NOW_NS, 3.0)])
    finally:
        sink.close()
    assert server.query("SELECT count(confidence) FROM cramp_events", db="secured")[0]["count"] == 1


class _StatusHandler(BaseHTTPRequestHandler):
    status = 500

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"code": "stub", "message": f"stub answer {self.status}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if 300 <= self.status < 400:
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""


@pytest.mark.parametrize(
    ("status", "retryable", "setup"),
    [(408, True, False), (429, True, False), (500, True, False), (413, False, False), (301, False, True)],
)
def test_statuses_influxd_1_6_never_sends(status: int, retryable: bool, setup: bool) -> None:
    """InfluxDB 2.x / proxies send these; influxd 1.6.7 does not, so a stub server answers them."""
    handler = cast(type[_StatusHandler], type("Handler", (_StatusHandler,), {"status": status}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    sink = InfluxSink(f"http://127.0.0.1:{server.server_address[1]}", "x", "-", "db/autogen")
    try:
        err = refused(sink.write_events, [event(NOW_NS, 1.0)])
    finally:
        sink.close()
        server.shutdown()
        server.server_close()
    assert (err.retryable, isinstance(err, SinkSetupError)) == (retryable, setup)
    assert f"answered {status}" in str(err) or f"({status}:" in str(err)


def test_credentials_in_the_url_never_reach_a_message() -> None:
    sink = InfluxSink(f"http://someone:url-secret@127.0.0.1:{free_port()}", "x", "-", "db/autogen")
    try:
        err = refused(sink.write_events, [event(NOW_NS, 1.0)])
    finally:
        sink.close()
    assert err.retryable is True
    assert "url-secret" not in str(err) and "someone" not in str(err)


def test_one_refused_event_is_dead_lettered_and_the_good_ones_are_stored(
    influx_db: InfluxTestDatabase, tmp_path: Path
) -> None:
    """Through the service's own wiring (settings -> InfluxSink + dead-letter file), not a hand-made SinkSet."""
    seed_legacy_integer_duration(influx_db)
    dead = tmp_path / "state" / "dead-letter.jsonl"
    settings = DetectorSettings(
        influx_url=influx_db.v2_url,
        influx_token="x",
        influx_bucket=influx_db.bucket,
        dead_letter_file=dead,
        publish_events=False,
        events_file=tmp_path / "unused.jsonl",
    )
    service = DetectorService(settings, cast(Model, None))  # the model is only used when frames arrive
    bad_first, bad_later = event(OLD_NS, 30.0), event(OLD_NS, 90.0)
    goods = [event(NOW_NS, float(s)) for s in (10, 40, 70, 100, 130)]
    try:
        service.sinks.write([bad_first], [summary(NOW_NS)])
        service.sinks.write([goods[0]], [summary(NOW_NS + 10**9)])
        service.sinks.write([goods[1], bad_later, goods[2], goods[3]], [summary(NOW_NS + 2 * 10**9)])
        service.sinks.write([goods[4]], [])
    finally:
        service.sinks.close()

    rows = influx_db.query(f"SELECT duration_s, confidence, patient FROM cramp_events WHERE time >= {NOW_NS}")
    assert [row["time"] for row in rows] == [e.onset_ns // 10**6 for e in goods]
    assert all(row["duration_s"] == 12.5 and row["patient"] == "p1" for row in rows)
    assert influx_db.query("SELECT count(emg_rms_uv) FROM cramp_summary")[0]["count"] == 3

    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [letter["record"]["onset_ns"] for letter in letters] == [bad_first.onset_ns, bad_later.onset_ns]
    for letter in letters:
        assert (letter["sink"], letter["kind"]) == ("influxdb", "event")
        assert 'field type conflict: input field "duration_s" on measurement "cramp_events"' in letter["reason"]
    stats = service.sinks.stats["influxdb"]
    assert (stats.written_events, stats.dead_lettered_events, stats.written_summaries) == (5, 2, 3)


def test_dead_letters_are_also_published_on_mqtt(
    mosquitto: MosquittoServer, influx_db: InfluxTestDatabase, tmp_path: Path
) -> None:
    """With event publishing on, each dead letter also goes to <prefix>/dead-letter, for alerting."""
    seed_legacy_integer_duration(influx_db)
    settings = DetectorSettings(
        mqtt_url=mosquitto.url,
        client_id=f"det-{tmp_path.name[-20:]}",
        influx_url=influx_db.v2_url,
        influx_token="x",
        influx_bucket=influx_db.bucket,
        dead_letter_file=tmp_path / "dead-letter.jsonl",
        events_file=tmp_path / "unused.jsonl",
    )
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener.on_message = lambda _c, _u, message: received.put(message)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.connect(mosquitto.host, mosquitto.port)
    listener.loop_start()
    service = DetectorService(settings, cast(Model, None))
    try:
        listener.subscribe(dead_letter_topic(settings.topic_prefix), qos=1)
        assert subscribed.wait(10)
        service.start()
        service.sinks.write([event(OLD_NS, 30.0), event(NOW_NS, 1.0)], [])
        message = received.get(timeout=10)
    finally:
        service.stop()
        service.close()
        listener.disconnect()
        listener.loop_stop()
    assert message.topic == "cramp/v1/dead-letter"
    letter = json.loads(message.payload)
    assert letter["record"]["onset_ns"] == event(OLD_NS, 30.0).onset_ns
    assert "field type conflict" in letter["reason"]
    assert [json.loads(line) for line in (tmp_path / "dead-letter.jsonl").read_text().splitlines()] == [letter]
    assert received.empty()
