"""LSL in and out with the real liblsl (bundled in pylsl), outlets and inlets in this process:
an LSL EMG + ACC stream through ``cramp-collector lsl`` to a real broker, and events as LSL markers."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.cli import main as collector_main
from collector.sources.lsl import LslSource
from crampwatch import wire
from crampwatch.errors import ConfigError, RecordingError
from crampwatch.frames import Frame, StreamKind
from crampwatch.lsl import lsl_module
from detector.events import Event
from detector.sinks.lsl import LslMarkerSink
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

EMG_HZ = 500.0
ACC_HZ = 50.0


def _outlet(name: str, kind: str, rate: float, labels: list[str], unit: str | None, fmt: str = "float32") -> Any:
    pylsl = lsl_module()
    info = pylsl.StreamInfo(name, kind, len(labels), rate, fmt, f"src-{name}")
    channels = info.desc().append_child("channels")
    for label in labels:
        c = channels.append_child("channel")
        c.append_child_value("label", label)
        if unit is not None:
            c.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info)


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]  # LSL resolves by name on the whole host: keep tests apart
    return f"emg-{tag}", f"acc-{tag}"


class Pusher:
    """Pushes 2 channels of EMG (in mV) and 3 of ACC (in m/s^2) in real time from a thread."""

    def __init__(self, names: tuple[str, str], seconds: float) -> None:
        self.emg_out = _outlet(names[0], "EMG", EMG_HZ, ["calf", "tibialis"], "millivolts")
        self.acc_out = _outlet(names[1], "Accelerometer", ACC_HZ, ["acc_x", "acc_y", "acc_z"], "m/s^2")
        rng = np.random.default_rng(3)
        self.emg: npt.NDArray[np.float32] = rng.normal(0, 0.02, (int(seconds * EMG_HZ), 2)).astype(np.float32)
        self.acc: npt.NDArray[np.float32] = (
            rng.normal(0, 0.1, (int(seconds * ACC_HZ), 3)) + np.array([0, 0, 9.8])
        ).astype(np.float32)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = threading.Event()

    def start(self, wait_for_consumers: float = 10.0) -> None:
        deadline = time.monotonic() + wait_for_consumers
        while not (self.emg_out.have_consumers() and self.acc_out.have_consumers()):
            assert time.monotonic() < deadline, "no LSL consumer connected"
            time.sleep(0.02)
        self.thread.start()

    def _run(self) -> None:
        step = 0.1
        for k in range(round(len(self.emg) / EMG_HZ / step)):
            a, b = round(k * step * EMG_HZ), round((k + 1) * step * EMG_HZ)
            c, d = round(k * step * ACC_HZ), round((k + 1) * step * ACC_HZ)
            self.emg_out.push_chunk(self.emg[a:b].tolist())
            self.acc_out.push_chunk(self.acc[c:d].tolist())
            time.sleep(step / 4)  # 4x real time


def _collect(source: LslSource, pusher: Pusher, emg_seconds: float) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + 30
    while source.emg_seconds() < emg_seconds:
        assert time.monotonic() < deadline, "LSL samples did not arrive"
        frames += source.poll()
    time.sleep(0.3)
    frames += source.poll()
    return frames + source.finish()


def test_lsl_source_frames_carry_every_sample_in_canonical_units(names: tuple[str, str]) -> None:
    pusher = Pusher(names, 4.0)
    source = LslSource(names[0], names[1], frame_s=0.2, resolve_timeout_s=5)
    source.open()
    try:
        pusher.start()
        frames = _collect(source, pusher, 4.0)
    finally:
        source.close()
    emg = [f for f in frames if f.kind is StreamKind.EMG]
    acc = [f for f in frames if f.kind is StreamKind.ACC]
    assert [f.seq for f in emg] == list(range(len(emg)))
    assert [f.end_of_stream for f in emg] == [False] * (len(emg) - 1) + [True]
    assert acc[-1].end_of_stream
    assert {f.n_samples for f in emg[:-1]} == {100}
    np.testing.assert_array_equal(np.vstack([f.data for f in emg]), pusher.emg.astype(np.float64) * 1000.0)
    acc_got: npt.NDArray[np.float64] = np.vstack([f.data for f in acc]).astype(np.float64)
    acc_want: npt.NDArray[np.float64] = pusher.acc.astype(np.float64) / 9.80665
    np.testing.assert_allclose(acc_got, acc_want, rtol=1e-12)
    assert emg[0].channels[0].name == "calf" and emg[0].channels[0].unit == "uV"
    assert all(b.t0_ns - a.t0_ns == 200_000_000 for a, b in itertools.pairwise(emg))
    assert abs(acc[0].t0_ns - emg[0].t0_ns) < 0.5e9  # both streams on one (wall) clock
    assert abs(emg[0].t0_ns - time.time_ns()) < 60e9


def test_streams_without_units_or_that_do_not_exist_are_refused(names: tuple[str, str]) -> None:
    outlet = _outlet(names[0], "EMG", EMG_HZ, ["calf"], None)
    with pytest.raises(RecordingError, match="no channel units"):
        LslSource(names[0], resolve_timeout_s=5).open()
    with pytest.raises(ConfigError, match=r"no LSL stream named 'nope-.*' found within 0\.5 s; streams on the network"):
        LslSource(f"nope-{names[0]}", resolve_timeout_s=0.5).open()
    del outlet


def test_lsl_command_publishes_a_device_over_mqtt(mosquitto: MosquittoServer, names: tuple[str, str]) -> None:
    frames: list[Frame] = []
    got_eos = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        frame = wire.decode(bytes(msg.payload))
        frames.append(frame)
        if frame.kind is StreamKind.EMG and frame.end_of_stream:
            got_eos.set()

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe([("cramp/v1/lab/amp/emg", 1), ("cramp/v1/lab/amp/acc", 1)])
    watcher.loop_start()
    pusher = Pusher(names, 3.0)
    argv = ["lsl", "--stream", names[0], "--acc-stream", names[1], "--duration", "2", "--frame-s", "0.5"]
    argv += ["--mqtt-url", mosquitto.url, "--patient", "lab", "--device", "amp"]
    codes: list[int] = []
    command = threading.Thread(target=lambda: codes.append(collector_main(argv)))
    try:
        command.start()
        pusher.start()
        command.join(30)
        assert codes == [0]
        assert got_eos.wait(10)
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    emg = [f for f in frames if f.kind is StreamKind.EMG]
    assert sum(f.n_samples for f in emg) >= 2 * EMG_HZ
    data = np.vstack([f.data for f in emg])
    np.testing.assert_array_equal(data, pusher.emg[: len(data)].astype(np.float64) * 1000.0)
    assert any(f.kind is StreamKind.ACC for f in frames)


@pytest.fixture
def marker_inlet() -> Iterator[tuple[LslMarkerSink, Any]]:
    name = f"events-{uuid.uuid4().hex[:8]}"
    sink = LslMarkerSink(name)
    pylsl = lsl_module()
    found = pylsl.resolve_byprop("name", name, 1, 5.0)
    assert found, "marker stream not visible on LSL"
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=5)
    yield sink, inlet
    inlet.close_stream()
    sink.close()


def test_events_become_lsl_markers_at_their_onset(marker_inlet: tuple[LslMarkerSink, Any]) -> None:
    sink, inlet = marker_inlet
    now_ns = time.time_ns()
    event = Event("p1", "amp", "cramp", 10.0, 42.5, 0.97, 310.0, start_ns=now_ns - 60_000_000_000)
    sink.write_events([event])
    sample, stamp = inlet.pull_sample(timeout=5)
    assert json.loads(sample[0])["type"] == "cramp"
    assert json.loads(sample[0])["onset_ns"] == event.onset_ns
    expected = lsl_module().local_clock() - 50.0  # the onset was 50 s ago
    assert stamp + inlet.time_correction() == pytest.approx(expected, abs=1.0)
