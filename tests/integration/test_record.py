"""Recording live streams to BDF+ (``cramp-collector record``) on a real broker, and annotated copies
(``cramp-detector annotate``) that EDF readers show."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pyedflib
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from crampwatch import wire
from crampwatch.formats import read_recording
from crampwatch.formats.edf import write_edf
from crampwatch.frames import StreamKind
from crampwatch.recording import Annotation, Recording, write_annotations
from crampwatch.simulate import Night
from crampwatch.topics import StreamTopic
from detector.cli import main as detector_main
from detector.model import load_model
from detector.offline import DEFAULT_CHUNK_S
from detector.stream import DeviceStreams
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

DURATION_S = 40.0
START = datetime(2026, 1, 2, 23, 15, 30)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = Night(DURATION_S, 5, event_density=3).recording()
    path = tmp_path_factory.mktemp("night") / "night.edf"
    write_edf(Recording(rec.emg, rec.acc, rec.annotations, meta={"start": START}), path)
    return path


class Record:
    """``cramp-collector record`` as a subprocess, started once it has subscribed."""

    def __init__(self, url: str, out: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "collector", "record", "--out", str(out), "--mqtt-url", url]
        cmd += ["--patient", "p", "--device", "d", *extra]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self.wait_for("waiting for frames")

    def wait_for(self, text: str) -> None:
        """Read the log until a line contains ``text``."""
        deadline = time.monotonic() + 30
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            self.log.append(line)
            if text in line:
                return
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise AssertionError(f"record did not log {text!r}:\n" + "".join(self.log))

    def wait(self, timeout: float = 60) -> str:
        _, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, "".join(self.log) + err
        return "".join(self.log) + err


@pytest.fixture
def recorder_cleanup() -> Iterator[list[Record]]:
    started: list[Record] = []
    yield started
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _replay(url: str, path: Path, *flags: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "collector", "replay", str(path), "--mqtt-url", url, "--patient", "p"]
    return subprocess.Popen([*cmd, "--device", "d", "--no-progress", "--log-level", "WARNING", *flags])


def test_a_replayed_night_is_recorded_to_bdf_with_its_start_rates_and_samples(
    mosquitto: MosquittoServer, tmp_path: Path, night: Path, recorder_cleanup: list[Record]
) -> None:
    out = tmp_path / "recorded.bdf"
    recorder = Record(mosquitto.url, out)
    recorder_cleanup.append(recorder)
    assert _replay(mosquitto.url, night, "--speed", "max").wait(60) == 0
    recorder.wait()
    original = read_recording(night)
    recorded = read_recording(out)
    assert recorded.meta["start"] == START  # device time from the EDF header, through the wire and back
    assert recorded.emg.rate_hz == original.emg.rate_hz
    assert recorded.emg.channel_names == original.emg.channel_names
    assert recorded.emg.n_samples == original.emg.n_samples
    step = _max_step(out)  # BDF rounds to its digital step
    np.testing.assert_allclose(recorded.emg.data, original.emg.data, rtol=0, atol=step)
    assert original.acc is not None and recorded.acc is not None
    assert recorded.acc.rate_hz == original.acc.rate_hz
    np.testing.assert_allclose(recorded.acc.data, original.acc.data, rtol=0, atol=step)
    assert recorded.annotations == ()


def test_ctrl_c_writes_what_has_arrived(
    mosquitto: MosquittoServer, tmp_path: Path, night: Path, recorder_cleanup: list[Record]
) -> None:
    out = tmp_path / "partial.edf"
    recorder = Record(mosquitto.url, out)
    recorder_cleanup.append(recorder)
    replay = _replay(mosquitto.url, night, "--speed", "8")  # 40 s of data in 5 s
    try:
        recorder.wait_for("emg: ")  # the first EMG frame arrived
        time.sleep(1.0)
        os.kill(recorder.proc.pid, signal.SIGINT)
        log = recorder.wait()
    finally:
        replay.kill()
        replay.wait()
    assert "interrupted: writing" in log
    partial = read_recording(out)
    assert 2.0 < partial.emg.duration_s < DURATION_S


def test_lost_and_duplicated_frames_become_a_gap_annotation(
    mosquitto: MosquittoServer, tmp_path: Path, night: Path, recorder_cleanup: list[Record]
) -> None:
    out = tmp_path / "gappy.bdf"
    recorder = Record(mosquitto.url, out, "--duration", "6")
    recorder_cleanup.append(recorder)
    emg = read_recording(night).emg
    frames = list(emg.frames(0.5, start_ns=0))[:12]  # 6 s of EMG only
    sent = [*frames[:3], frames[2], *frames[5:]]  # frame 2 twice, frames 3 and 4 lost
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    topic = StreamTopic("p", "d", emg.kind).render("cramp/v1")
    for f in sent:
        client.publish(topic, wire.encode(f), qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    log = recorder.wait()
    assert "1 duplicate frame(s) dropped" in log
    rec = read_recording(out)
    assert rec.emg.n_samples == 12 * frames[0].n_samples  # the gap is filled: time stays aligned
    assert rec.annotations == (Annotation("gap", 1.5, 2.5, "emg"),)
    assert rec.meta["start"] == datetime(1970, 1, 1)
    half = frames[0].n_samples
    np.testing.assert_allclose(rec.emg.data[3 * half : 5 * half], 0.0, atol=_max_step(out))


@pytest.mark.parametrize("dropout_s", [600.0, 7200.0], ids=["10min", "2h"])
def test_a_long_dropout_is_filled_and_annotated_so_file_time_stays_device_time(
    mosquitto: MosquittoServer, tmp_path: Path, night: Path, recorder_cleanup: list[Record], dropout_s: float
) -> None:
    out = tmp_path / "dropout.bdf"
    recorder = Record(mosquitto.url, out)
    recorder_cleanup.append(recorder)
    original = read_recording(night)
    assert original.acc is not None
    start_ns = round(START.replace(tzinfo=UTC).timestamp() * 1e9)
    cut_s, frame_s = 20.0, 0.5
    sent = []  # the night as a device sends it, silent for dropout_s from cut_s on (those frames lost)
    for f in Recording(original.emg, original.acc).frames(frame_s):
        f = dataclasses.replace(f, t0_ns=start_ns + f.t0_ns)
        if f.t0_ns - start_ns >= cut_s * 1e9:
            f = dataclasses.replace(f, t0_ns=f.t0_ns + round(dropout_s * 1e9), seq=f.seq + round(dropout_s / frame_s))
        sent.append(f)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    for f in sent:
        client.publish(StreamTopic("p", "d", f.kind).render("cramp/v1"), wire.encode(f), qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    log = recorder.wait(timeout=300)
    assert "lost (600.00 s)" in log or "lost (7200.00 s)" in log
    rec = read_recording(out)
    assert rec.meta["start"] == START
    emg_rate, acc_rate = original.emg.rate_hz, original.acc.rate_hz
    assert rec.emg.n_samples == original.emg.n_samples + round(dropout_s * emg_rate)
    # Each stream's gap starts where its first lost frame would have (frames end at different times).
    acc_cut_ns = min(f.t0_ns - start_ns for f in sent if f.kind is StreamKind.ACC and f.t0_ns - start_ns >= cut_s * 1e9)
    acc_cut_s = round(acc_cut_ns / 1e9 - dropout_s, 6)
    assert rec.annotations == (
        Annotation("gap", cut_s, cut_s + dropout_s, "emg"),
        Annotation("gap", acc_cut_s, acc_cut_s + dropout_s, "acc"),
    )
    step = _max_step(out)
    cut = round(cut_s * emg_rate)
    after = slice(cut + round(dropout_s * emg_rate), None)
    np.testing.assert_allclose(rec.emg.data[after], original.emg.data[cut:], rtol=0, atol=step)
    assert rec.acc is not None and rec.acc.n_samples == original.acc.n_samples + round(dropout_s * acc_rate)
    # Offline detection of the file meets the same hole the live detector met, and finds the same events.
    live = DeviceStreams(load_model(), "p", "d", expect_acc=True)
    live_events = [e for f in sent for e in live.on_frame(f).events] + live.finish().events
    offline = DeviceStreams(load_model(), "p", "d", expect_acc=True)
    offline_events = [
        e for f in rec.frames(DEFAULT_CHUNK_S) for e in offline.on_frame(f).events
    ] + offline.finish().events
    for streams in (live, offline):
        stats = streams.stats(StreamKind.EMG)
        assert stats is not None and (stats.gaps, stats.lost_samples) == (1, round(dropout_s * emg_rate))
    assert [(e.type, e.onset_s) for e in offline_events] == [(e.type, e.onset_s) for e in live_events]


def test_annotate_writes_events_any_edf_reader_shows(tmp_path: Path, night: Path) -> None:
    events = tmp_path / "events.csv"
    found = [Annotation("cramp", 3.25, 12.75), Annotation("spasm", 20.5, 21.0, "clonus")]
    write_annotations(events, [*found, Annotation("cramp", 300.0, 310.0)])  # the last is past the end
    out = tmp_path / "scored.edf"
    assert detector_main(["annotate", str(night), str(events), "--out", str(out)]) == 0
    with pyedflib.EdfReader(str(out)) as f:  # a plain EDF reader sees them
        onsets, durations, texts = f.readAnnotations()
    shown = {(t, round(o, 2), round(d, 2)) for o, d, t in zip(onsets, durations, texts, strict=True)}
    assert {("cramp", 3.25, 9.5), ("spasm:clonus", 20.5, 0.5)} <= shown
    original = read_recording(night)
    copy = read_recording(out)
    assert set(found) <= set(copy.annotations)
    assert set(original.annotations) <= set(copy.annotations)  # the night's own truth is kept
    np.testing.assert_allclose(copy.emg.data, original.emg.data, rtol=0, atol=_max_step(out) + _max_step(night))
    replaced = tmp_path / "only-events.bdf"
    assert detector_main(["annotate", str(night), str(events), "--out", str(replaced), "--replace"]) == 0
    assert set(read_recording(replaced).annotations) == set(found)
    assert detector_main(["annotate", str(night), str(events), "--out", str(night)]) == 2  # never overwrite


def _max_step(path: Path) -> float:
    """The coarsest digital step of the file's signals, in their physical unit (µV or g)."""
    with pyedflib.EdfReader(str(path)) as f:
        return max(
            float((f.physical_max(i) - f.physical_min(i)) / (f.digital_max(i) - f.digital_min(i)))
            for i in range(f.signals_in_file)
        )
