"""The live service scores many devices' windows in one model call, and each device's events stay its own.

``DetectorService.handle_batch`` runs each frame through its device's stream state and features, then
scores the waiting windows of every device in ONE ``predict_proba`` call and hands each device its rows of
probabilities. These tests feed several simulated nights, interleaved as a broker would deliver them, in
uneven batches, and check that every device gets exactly the events it gets alone, frame by frame,
and offline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crampwatch import wire
from crampwatch.simulate import simulate
from crampwatch.topics import StreamTopic, format_shard_set, parse_shard_set
from detector.config import DetectorSettings
from detector.events import Event
from detector.model import Model, load_model
from detector.offline import detect_recording
from detector.service import DetectorService
from tests.unit.test_bad_input import CollectingSink

SEEDS = (31, 32, 33, 34)
NIGHT_S = 240.0
FRAME_S = 1.0


@dataclass(frozen=True)
class CountingModel(Model):
    """The shipped model, counting its calls and the rows of each (to show the service batches)."""

    calls: list[int] = field(default_factory=list)

    def probabilities(self, x: Any, types: tuple[str, ...]) -> Any:
        self.calls.append(x.shape[0])
        return super().probabilities(x, types)


@pytest.fixture(scope="module")
def model() -> CountingModel:
    m = load_model()
    return CountingModel(m.estimator, m.classes, m.card, m.path, m.emg_estimator)


@pytest.fixture(scope="module")
def nights() -> dict[str, list[tuple[str, bytes]]]:
    """Per device, its messages (topic, payload) in the order the device sends them."""
    out = {}
    for seed in SEEDS:
        rec = simulate(NIGHT_S, seed=seed, event_density=5.0)
        device = f"d{seed}"
        out[device] = [
            (StreamTopic("p1", device, f.kind).render("cramp/v1"), wire.encode(f))
            for f in rec.frames(FRAME_S, start_ns=1_700_000_000_000_000_000)
        ]
    return out


def _service(tmp_path: Path, model: Model) -> tuple[DetectorService, CollectingSink]:
    cfg = DetectorSettings.model_validate({"dead_letter_file": tmp_path / "dead.jsonl", "publish_events": False})
    sink = CollectingSink()
    return DetectorService(cfg, model, sinks=[sink]), sink


def _key(e: Event) -> tuple[object, ...]:
    return (e.type, e.onset_s, e.offset_s, e.confidence, e.peak_uv, e.subtype, e.precursor_s, e.interrupted_s)


def _by_device(events: list[Event]) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for e in events:
        out.setdefault(e.device, []).append(_key(e))
    return out


def test_devices_in_one_batched_service_get_exactly_their_own_events(
    tmp_path: Path, model: CountingModel, nights: dict[str, list[tuple[str, bytes]]]
) -> None:
    # Alone: one device per service, one message (and so one model call) at a time, as before batching.
    alone: dict[str, list[tuple[object, ...]]] = {}
    for device, messages in nights.items():
        (tmp_path / device).mkdir()
        service, sink = _service(tmp_path / device, model)
        for topic, payload in messages:
            service.handle(topic, payload)
        service.sinks.close()
        assert service.stats.internal_errors == 0 and service.stats.rejected_frames == 0
        alone[device] = _by_device(sink.events).get(device, [])
    assert sum(len(v) for v in alone.values()) >= 8, "the nights must have events for this test to mean much"

    # Together: the devices' messages interleaved at random (each device's own order kept), in batches of
    # uneven size, so a batch holds several frames of one device and frames of many.
    rng = random.Random(5)
    queues = {d: list(m) for d, m in nights.items()}
    mixed: list[tuple[str, bytes]] = []
    while queues:
        d = rng.choice(sorted(queues))
        mixed.append(queues[d].pop(0))
        if not queues[d]:
            del queues[d]
    service, sink = _service(tmp_path, model)
    model.calls.clear()
    i = 0
    while i < len(mixed):
        n = rng.choice((1, 3, 17, 64, 200))
        service.handle_batch(mixed[i : i + n])
        i += n
    service.sinks.close()
    assert service.stats.internal_errors == 0 and service.stats.rejected_frames == 0
    assert _by_device(sink.events) == {d: v for d, v in alone.items() if v}
    assert service.stats.finished_devices == {("p1", d) for d in nights}
    # Batched: far fewer model calls than frames, and calls that held several devices' windows.
    assert len(model.calls) < len(mixed) / 4
    assert max(model.calls) > 2 * FRAME_S / 0.5


def test_live_final_events_match_offline_and_open_events_announce_them(model: CountingModel, tmp_path: Path) -> None:
    """The service's final events for a device are those of ``detect`` on the same recording; before each
    cramp or spasm ends, an ``open`` event with the same id was written (or, if it came to nothing, a
    ``cancelled`` one)."""
    rec = simulate(NIGHT_S, seed=SEEDS[0], event_density=5.0)
    offline = [_key(e) for e in detect_recording(rec, model)]
    assert all(e.state == "final" for e in detect_recording(rec, model))
    service, sink = _service(tmp_path, model)
    messages = [(StreamTopic("p1", "d1", f.kind).render("cramp/v1"), wire.encode(f)) for f in rec.frames(FRAME_S)]
    for i in range(0, len(messages), 50):
        service.handle_batch(messages[i : i + 50])
    service.sinks.close()
    final = [e for e in sink.events if e.state == "final"]
    assert offline and [_key(e) for e in final] == offline
    states: dict[str, list[str]] = {}
    for e in sink.events:
        states.setdefault(e.event_id, []).append(e.state)
    # A spasm shorter than OPEN_AFTER_S ends before it could be announced; PLM events are never announced.
    allowed = (["final"], ["open", "final"], ["open", "cancelled", "final"], ["open", "cancelled"])
    assert all(s in allowed for s in states.values()), states
    assert ["open", "final"] in states.values()
    opened = [e for e in sink.events if e.state == "open"]
    assert opened and all(o.offset_s - o.onset_s >= 2.0 for o in opened)  # OPEN_AFTER_S of evidence
    assert service.stats.events == len(final) and service.stats.open_events == len(sink.events) - len(final)


def test_a_shard_set_reads_back_from_its_text() -> None:
    """The state file of a sharded detector is named after its shards, in the grammar --own-shards reads."""
    for owned in ({0}, {0, 1, 2, 5}, {3, 4, 9, 10, 11}, set(range(8))):
        text = format_shard_set(owned)
        assert parse_shard_set(text, 16) == owned
    assert format_shard_set({0, 1, 2, 5}) == "0-2,5"
