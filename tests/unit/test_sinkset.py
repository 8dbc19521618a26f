"""SinkSet: a refused item goes to the dead letter and the queue goes on; a sink that is down keeps its items.

The sink here is a test double of CrampWatch's own Sink protocol (no broker or database is imitated);
the InfluxDB sink's real errors are tested against influxd in tests/integration/test_influx_sink.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from influxdb_client.rest import ApiException

from crampwatch.errors import SinkError
from crampwatch.filelock import lock_is_free
from crampwatch.topics import shard_of
from detector.config import DetectorSettings
from detector.events import Event, Summary
from detector.journal import StateBusyError, StateError, StateStore
from detector.model import Model
from detector.service import DetectorService
from detector.sinks import DeadLetterFile, JsonlSink, SinkSet, SinkSetupError
from detector.sinks import base as sinks_base
from detector.sinks.influx import sink_error
from detector.sinks.queue import ShardedQueue


def event(onset_s: float, subtype: str = "") -> Event:
    return Event("p1", "d1", "cramp", onset_s, onset_s + 10.0, 0.9, 250.0, subtype=subtype, start_ns=10**18)


def summary(second: int) -> Summary:
    return Summary("p1", "d1", 10**18 + second * 10**9, 12.0, 0.01, True)


class ScriptedSink:
    """Takes every item except the refused ones; can be 'down' (retryable) or misconfigured (setup error).

    Like InfluxDB with a partial write, it stores the good items of a batch it refuses.
    """

    name = "scripted"

    def __init__(self, refuse: set[float] | None = None) -> None:
        self.refuse = refuse or set()
        self.down = False
        self.misconfigured = False
        self.events: dict[float, Event] = {}
        self.summaries: list[Summary] = []
        self.calls = 0
        self.closed = False
        self.down_after_calls: int | None = None

    def write_events(self, events: list[Event]) -> None:
        self.calls += 1
        if self.down_after_calls is not None and self.calls > self.down_after_calls:
            self.down = True
        if self.down:
            raise SinkError(self.name, "connection refused", retryable=True)
        if self.misconfigured:
            raise SinkSetupError(self.name, "401 authorization failed")
        bad = [e for e in events if e.onset_s in self.refuse]
        self.events.update((e.onset_s, e) for e in events if e not in bad)
        if bad:
            raise SinkError(self.name, f"400 partial write: field type conflict dropped={len(bad)}", retryable=False)

    def write_summaries(self, summaries: list[Summary]) -> None:
        self.calls += 1
        if self.down:
            raise SinkError(self.name, "connection refused", retryable=True)
        self.summaries.extend(summaries)

    def close(self) -> None:
        self.closed = True


def dead_letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_refused_event_goes_to_the_dead_letter_and_later_events_flow(tmp_path: Path) -> None:
    sink = ScriptedSink(refuse={30.0})
    dead = tmp_path / "state" / "dead.jsonl"
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(dead))

    sinks.write([event(10.0), event(20.0), event(30.0), event(40.0), event(50.0)], [])
    sinks.write([event(60.0)], [summary(0)])
    sinks.write([event(70.0)], [])

    assert sorted(sink.events) == [10.0, 20.0, 40.0, 50.0, 60.0, 70.0]
    assert sinks.pending("scripted") == (0, 0)
    [letter] = dead_letters(dead)
    assert letter["sink"] == "scripted"
    assert letter["kind"] == "event"
    assert "field type conflict" in letter["reason"]
    assert letter["record"]["onset_s"] == 30.0
    assert letter["record"]["onset_ns"] == event(30.0).onset_ns
    assert letter["time"].endswith("Z")
    stats = sinks.stats["scripted"]
    assert (stats.written_events, stats.dead_lettered_events, stats.written_summaries) == (6, 1, 1)


def test_open_and_cancelled_announcements_are_not_counted_as_events_written() -> None:
    """One final event per detected event: the demo compares "events written" with the events detected, and
    a live cramp also sends an open announcement, which must not hide a missing final event."""
    from dataclasses import replace

    sinks = SinkSet([ScriptedSink()])
    sinks.write([replace(event(10.0), state="open"), replace(event(20.0), state="cancelled")], [])
    sinks.write([event(10.0)], [])

    stats = sinks.stats["scripted"]
    assert (stats.written_events, stats.written_announcements) == (1, 2)


def test_each_refused_event_is_isolated_from_the_good_ones_of_its_batch(tmp_path: Path) -> None:
    sink = ScriptedSink(refuse={0.0, 70.0, 630.0})
    dead = tmp_path / "dead.jsonl"
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(dead))
    batch = [event(10.0 * i) for i in range(64)]

    sinks.write(batch, [])

    assert sorted(letter["record"]["onset_s"] for letter in dead_letters(dead)) == [0.0, 70.0, 630.0]
    assert len(sink.events) == 61
    assert sink.calls <= 1 + 2 * 3 * 6  # halving: about 2 log2(n) requests per refused event, not n


def test_a_setup_error_dead_letters_the_batch_without_splitting_it(tmp_path: Path) -> None:
    sink = ScriptedSink()
    sink.misconfigured = True
    dead = tmp_path / "dead.jsonl"
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(dead))

    sinks.write([event(10.0 * i) for i in range(8)], [summary(0), summary(1)])

    assert sink.calls == 2  # one refused event batch, then the summaries (which this sink takes)
    letters = dead_letters(dead)
    assert [letter["kind"] for letter in letters] == ["event"] * 8
    assert all("401" in letter["reason"] for letter in letters)
    assert len(sink.summaries) == 2


def test_a_sink_that_is_down_keeps_its_items_in_order_and_logs_once_per_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    sink = ScriptedSink()
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(tmp_path / "dead.jsonl"), clock=lambda: now[0])
    sink.down = True
    with caplog.at_level(logging.ERROR, logger=sinks_base.__name__):
        for second in range(120):
            now[0] = float(second)
            sinks.write([event(float(second))] if second % 40 == 0 else [], [summary(second)])
    assert sinks.pending("scripted") == (3, 120)
    failures = [r for r in caplog.records if "connection refused" in r.getMessage()]
    assert len(failures) == 2  # the first failure, then one a minute; not 120 lines
    assert "3 events, 120 summaries queued" not in failures[0].getMessage()
    assert sinks.stats["scripted"].failed_writes == 120

    sink.down = False
    with caplog.at_level(logging.INFO, logger=sinks_base.__name__):
        sinks.write([], [])
        sinks.write([event(500.0)], [])
    assert list(sink.events) == [0.0, 40.0, 80.0, 500.0]
    assert len(sink.summaries) == 120
    assert any("writes succeed again after 120 failed attempts" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "dead.jsonl").exists()  # nothing refused: no dead-letter file at all


def test_what_overflows_the_retry_queue_goes_to_the_dead_letter_oldest_first(tmp_path: Path) -> None:
    sink = ScriptedSink()
    sink.down = True
    dead = tmp_path / "dead.jsonl"
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(dead), max_pending_events=3, max_pending_summaries=5)
    for i in range(5):
        sinks.write([event(float(i))], [summary(i), summary(100 + i)])

    assert sinks.pending("scripted") == (3, 5)
    letters = dead_letters(dead)
    assert [(x["kind"], x["record"].get("onset_s")) for x in letters if x["kind"] == "event"] == [
        ("event", 0.0),
        ("event", 1.0),
    ]
    assert sum(x["kind"] == "summary" for x in letters) == 5
    assert all("retry queue was full" in x["reason"] and "connection refused" in x["reason"] for x in letters)


def test_close_tries_once_more_then_dead_letters_what_is_left(tmp_path: Path) -> None:
    sink = ScriptedSink()
    sink.down = True
    dead = tmp_path / "dead.jsonl"
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(dead))
    sinks.write([event(1.0)], [summary(1)])
    sinks.close()
    assert sink.closed
    assert [(x["kind"], "stopped" in x["reason"]) for x in dead_letters(dead)] == [
        ("event", True),
        ("summary", True),
    ]

    recovered = ScriptedSink()
    recovered.down = True
    sinks = SinkSet([recovered], dead_letter=DeadLetterFile(tmp_path / "other.jsonl"))
    sinks.write([event(2.0)], [])
    recovered.down = False
    sinks.close()
    assert list(recovered.events) == [2.0]
    assert not (tmp_path / "other.jsonl").exists()


def test_a_sink_going_down_while_a_batch_is_split_keeps_the_rest_in_order(tmp_path: Path) -> None:
    sink = ScriptedSink(refuse={10.0})
    sink.down_after_calls = 2  # the whole batch (refused), its first half (refused), then down
    dead = tmp_path / "dead.jsonl"
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(dead))
    batch = [event(10.0 * i) for i in range(8)]

    sinks.write(batch, [])

    assert dead_letters(dead) == []
    assert sinks.pending("scripted") == (8, 0)
    sink.down = False
    sink.down_after_calls = None
    sinks.write([], [])
    assert [x["record"]["onset_s"] for x in dead_letters(dead)] == [10.0]
    assert sorted(sink.events) == [10.0 * i for i in range(8) if i != 1]


def test_an_unwritable_dead_letter_keeps_its_lines_until_it_can_write(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = blocker / "dead.jsonl"
    sinks = SinkSet([ScriptedSink(refuse={1.0})], dead_letter=DeadLetterFile(path))
    sinks.write([event(1.0)], [])
    assert sinks.dead_letter is not None and sinks.dead_letter.waiting == 1
    blocker.unlink()
    sinks.close()
    assert [x["record"]["onset_s"] for x in dead_letters(path)] == [1.0]


def test_without_a_dead_letter_refused_items_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    sinks = SinkSet([ScriptedSink(refuse={1.0})])
    with caplog.at_level(logging.ERROR, logger=sinks_base.__name__):
        sinks.write([event(1.0), event(2.0)], [])
    assert sinks.stats["scripted"].dead_lettered_events == 1
    assert any("lost (no dead letter)" in r.getMessage() for r in caplog.records)


def test_the_service_wires_the_dead_letter_setting(tmp_path: Path) -> None:
    settings = DetectorSettings(
        events_file=tmp_path / "events.jsonl", dead_letter_file=tmp_path / "dead.jsonl", publish_events=False
    )
    service = DetectorService(settings, cast(Model, None))  # the model is not used until frames arrive
    try:
        assert [type(s) for s in service.sinks.sinks] == [JsonlSink]
        assert service.sinks.dead_letter is not None
        assert service.sinks.dead_letter.path == tmp_path / "dead.jsonl"
    finally:
        service.sinks.close()
    assert DetectorSettings().dead_letter_file == Path("cramp-dead-letter.jsonl")


def test_influx_errors_no_real_server_produces() -> None:
    """Branches tests/integration/test_influx_sink.py cannot reach with a real server (no HTTP answer)."""
    no_answer = sink_error("influxdb", "http://db:8086", ApiException(reason="no response"))
    assert no_answer.retryable and "answered nothing" in str(no_answer)
    os_error = sink_error("influxdb", "http://u:pw@db:8086", ConnectionResetError(104, "reset"))
    assert os_error.retryable and "ConnectionResetError" in str(os_error)
    assert "pw" not in str(os_error) and "http://db:8086" in str(os_error)


def test_a_durable_queue_keeps_its_items_across_a_restart_and_says_how_many(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ScriptedSink()
    sink.down = True
    store = StateStore(tmp_path / "state" / "detector-x.db")
    sinks = SinkSet([sink], dead_letter=DeadLetterFile(tmp_path / "dead.jsonl"), queue=store.pending)
    sinks.write([event(1.0), event(2.0)], [summary(1), summary(2), summary(3)])
    with caplog.at_level(logging.WARNING, logger=sinks_base.__name__):
        sinks.close()
        store.close()
    assert "stopping with 2 events and 3 summaries still queued in " in caplog.text
    assert not (tmp_path / "dead.jsonl").exists()  # kept for the next start, not dead-lettered

    recovered = ScriptedSink()
    store = StateStore(tmp_path / "state" / "detector-x.db")
    sinks = SinkSet([recovered], dead_letter=DeadLetterFile(tmp_path / "dead.jsonl"))
    sinks.use_queue(store.pending)
    sinks.retry()
    assert list(recovered.events) == [1.0, 2.0]
    assert [s.time_ns for s in recovered.summaries] == [summary(i).time_ns for i in (1, 2, 3)]
    assert recovered.events[1.0] == event(1.0)  # every field back, as it was
    assert sinks.pending("scripted") == (0, 0)
    sinks.close()
    store.close()


def test_with_retry_s_a_down_sink_is_retried_by_the_timer_not_at_every_write(tmp_path: Path) -> None:
    now = [0.0]
    sink = ScriptedSink()
    sinks = SinkSet([sink], retry_s=5.0, clock=lambda: now[0])
    sink.down = True
    sinks.write([event(1.0)], [summary(1)])
    calls = sink.calls
    for second in range(1, 5):  # not due yet: writes only queue
        now[0] = float(second)
        sinks.write([], [summary(1 + second)])
    assert sink.calls == calls
    sink.down = False
    sinks.retry()  # still not due
    assert sink.calls == calls
    now[0] = 5.0
    sinks.retry()  # due: everything goes, with no new data
    assert list(sink.events) == [1.0] and len(sink.summaries) == 5
    assert sinks.pending("scripted") == (0, 0)


def test_the_state_file_is_one_detectors_and_a_checkpoint_empties_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "detector-x.db"
    store = StateStore(path)
    try:
        with pytest.raises(StateError, match="another detector with the same --client-id"):
            StateStore(path)
        store.append("cramp/v1/p/d/emg", b"one")
        store.append("cramp/v1/p/d/emg", b"two")
        store.commit()
        assert list(store.journal()) == [("cramp/v1/p/d/emg", b"one"), ("cramp/v1/p/d/emg", b"two")]
        store.save_checkpoint({("p", "d"): b"state"}, "v1")
        assert list(store.journal()) == [] and store.journal_rows == 0
        assert store.load_checkpoint() == ("v1", {("p", "d"): b"state"})
        store.append("cramp/v1/p/d/emg", b"three")  # after the checkpoint: the journal again
    finally:
        store.close()
    store = StateStore(path)
    try:
        assert [payload for _, payload in store.journal()] == [b"three"]  # close commits
    finally:
        store.close()


def test_a_sharded_queue_keeps_each_item_in_its_patients_shard_file(tmp_path: Path) -> None:
    """With sharding, queued points move with their shard: its next owner finds them in the shard's file."""
    patients = [f"p{i}" for i in range(12)]
    shard = {p: shard_of(p, 2) for p in patients}
    assert set(shard.values()) == {0, 1}
    stores = {k: StateStore(tmp_path / f"detector-x-s{k}of2.db") for k in (0, 1)}
    queue = ShardedQueue(2, "in test")
    for k, store in stores.items():
        queue.add(k, store.pending)
    sink = ScriptedSink()
    sink.down = True
    sinks = SinkSet([sink], queue=queue)
    events = [replace(event(float(i)), patient=p) for i, p in enumerate(patients)]
    sinks.write(events, [])
    assert queue.count("scripted", "event") == 12
    for k, store in stores.items():
        assert [e.patient for e in store.pending.head("scripted", "event", 99)] == [
            p for p in patients if shard[p] == k
        ]
    # head and drop_head walk the shards in the same order, as SinkSet's flush needs.
    first = queue.head("scripted", "event", 5)
    queue.drop_head("scripted", "event", 5)
    assert first + queue.head("scripted", "event", 99) == sorted(events, key=lambda e: shard[e.patient])
    for store in stores.values():
        store.close()

    # Another process takes only shard 1 over: it sends shard 1's items, and shard 0's stay in their file.
    taken = ShardedQueue(2, "in test")
    store = StateStore(tmp_path / "detector-x-s1of2.db")
    taken.add(1, store.pending)
    recovered = ScriptedSink()
    sinks = SinkSet([recovered], queue=taken)
    sinks.retry()
    assert {e.patient for e in recovered.events.values()} == {p for p in patients if shard[p] == 1}
    assert taken.count("scripted", "event") == 0
    store.close()


def test_a_shard_lock_is_seen_free_only_when_no_process_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "detector-x-s0of2.db"
    assert lock_is_free(path)
    store = StateStore(path)
    assert not lock_is_free(path)
    with pytest.raises(StateBusyError):
        StateStore(path)
    store.close()
    assert lock_is_free(path)


def test_standby_for_reads_all_a_range_or_nothing() -> None:
    assert DetectorSettings(shards=8, standby_for="all").standby_set == frozenset(range(8))
    assert DetectorSettings(shards=8, standby_for="2-3,6").standby_set == {2, 3, 6}
    assert DetectorSettings(shards=8).standby_set == frozenset()
    assert DetectorSettings(shards=8, own_shards="all").shard_set == frozenset(range(8))
    with pytest.raises(ValueError, match=r"standby for '9'.*outside 0-7"):
        DetectorSettings(shards=8, standby_for="9")
    with pytest.raises(ValueError, match="standby for 'all' given without shards"):
        DetectorSettings(standby_for="all")
