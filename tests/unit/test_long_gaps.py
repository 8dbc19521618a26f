"""Dropouts in the middle of a night, through the detector's stream path: events keep their device time.

A BLE dropout loses frames: sequence numbers jump and device time jumps with them. The frames after
the dropout must be placed at their own device time, whatever the dropout's length (a 10-minute
dropout is at the border of what is filled with no-data filler; 2 hours is far beyond it).

The night is simulated once; a dropout is made by cutting the frames of a stretch of it out, which is
what a device that went silent for that stretch sends. So that a long dropout does not cost hours of
simulation, the frames after the cut are moved later by the dropout's length: the detector sees the
same thing as from a device that was silent that long.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from crampwatch.frames import Frame, StreamKind
from crampwatch.recording import Recording
from crampwatch.simulate import simulate
from detector.events import Event
from detector.model import Model, load_model
from detector.stream import DeviceStreams

START_NS = 1_767_394_800_000_000_000  # 2026-01-02 23:00 UTC: device clocks run on Unix time
NIGHT_S = 900.0
CUT_S = 150.0  # the dropout starts here, in the simulated night's time
FRAME_S = 5.0  # large frames: fewer model calls, and chunking does not change the events
MATCH_S = 2.0  # an event after the dropout is "the same" as without it if its onset is this close


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def night() -> Recording:
    return simulate(NIGHT_S, seed=11, event_density=3.0)


def with_dropout(rec: Recording, dropout_s: float) -> Iterator[Frame]:
    """The night's frames, with ``dropout_s`` of silence starting at ``CUT_S`` (the frames in it lost)."""
    shift_ns = round(dropout_s * 1e9)
    for f in rec.frames(FRAME_S):
        t0_ns = START_NS + f.t0_ns
        if f.t0_ns >= CUT_S * 1e9:
            lost = round(dropout_s / FRAME_S)  # frames the device sent into the void during the dropout
            yield dataclasses.replace(f, t0_ns=t0_ns + shift_ns, seq=f.seq + lost)
        else:
            yield dataclasses.replace(f, t0_ns=t0_ns)


def detect(model: Model, frames: Iterator[Frame]) -> tuple[list[Event], DeviceStreams]:
    streams = DeviceStreams(model, "p", "d", expect_acc=True)
    events = [e for f in frames for e in streams.on_frame(f).events]
    events += streams.finish().events
    return events, streams


def device_onset_s(e: Event) -> float:
    """Event onset as device time, seconds after START_NS."""
    return (e.onset_ns - START_NS) / 1e9


@pytest.fixture(scope="module")
def reference(model: Model, night: Recording) -> list[Event]:
    events, _ = detect(model, with_dropout(night, 0.0))
    after = [e for e in events if device_onset_s(e) > CUT_S + 30.0]
    assert len(after) >= 2, "the night should hold events after the dropout to check their times"
    return events


@pytest.mark.parametrize("dropout_s", [600.0, 610.0, 7200.0], ids=["10min", "10min+10s", "2h"])
def test_events_after_a_dropout_keep_their_device_time(
    model: Model, night: Recording, reference: list[Event], dropout_s: float
) -> None:
    events, streams = detect(model, with_dropout(night, dropout_s))
    stats = streams.stats(StreamKind.EMG)
    assert stats is not None and stats.gaps == 1
    assert stats.lost_samples == round(dropout_s * night.emg.rate_hz)
    # Nothing is stamped inside the dropout, where no data came.
    inside = [e for e in events if CUT_S + 1.0 < device_onset_s(e) < CUT_S + dropout_s - 1.0]
    assert inside == [], f"events stamped inside a {dropout_s:.0f} s dropout: {inside}"
    # Events well after the dropout are the reference's, moved later by exactly the dropout.
    expected = [device_onset_s(e) + dropout_s for e in reference if device_onset_s(e) > CUT_S + 30.0]
    # A reference event that spans the cut (seed 11's 230 s cramp from 7 s) goes on while the device is
    # silent: what the detector finds of it after the dropout is its remainder, not a new event, and is
    # not compared here.
    spanning = [(device_onset_s(e) + dropout_s, device_onset_s(e) + e.duration_s + dropout_s) for e in reference]
    spanning = [(a, b) for a, b in spanning if a - dropout_s < CUT_S < b - dropout_s]
    found = [
        device_onset_s(e)
        for e in events
        if device_onset_s(e) > CUT_S + dropout_s + 30.0 and not any(a <= device_onset_s(e) < b for a, b in spanning)
    ]
    for t in expected:
        assert any(abs(t - u) <= MATCH_S for u in found), f"event expected at {t:.1f} s, found {found}"
    for u in found:
        assert any(abs(t - u) <= MATCH_S for t in expected), f"event at {u:.1f} s not expected: {expected}"
    # Before the dropout nothing changes.
    before = [(e.type, e.onset_ns) for e in reference if device_onset_s(e) < CUT_S - 30.0]
    assert [(e.type, e.onset_ns) for e in events if device_onset_s(e) < CUT_S - 30.0] == before
