"""``cramp-collector run`` end to end: CLI settings -> spool -> BLE runner -> real mosquitto -> status topic.

The only substitution is the radio: the command's BleRunner is given the bumble backend and a virtual
CrampWatch sensor (the command has no backend flag, as a deployed collector must not have one).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from collector.ble.runner import BleRunner, RunnerStats
from collector.cli import build_parser
from collector.commands import run as run_command
from crampwatch import wire
from crampwatch.frames import FLAG_END_OF_STREAM, Frame, StreamKind
from crampwatch.mqtt import connect, make_client
from tests.ble_backend import VirtualRadio
from tests.ble_fakes import FakeCrampWatchSensor
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration


class VirtualRadioRunner(BleRunner):
    """The command's runner, on a virtual radio with one CrampWatch sensor in range."""

    async def run(self, stop: Any = None, *, duration_s: float | None = None) -> RunnerStats:
        logging.getLogger("bumble").setLevel(logging.WARNING)
        radio = VirtualRadio()
        await radio.start()
        await FakeCrampWatchSensor(radio).start()
        self.backend = radio.backend()
        return await super().run(stop, duration_s=duration_s)


def test_run_streams_a_night_and_ends_it_after_duration(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    frames: list[Frame] = []
    statuses: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            if msg.topic.endswith("/status"):
                statuses.append(json.loads(msg.payload))
            elif msg.topic.endswith(("/emg", "/acc")):
                frames.append(wire.decode(bytes(msg.payload)))

    listener = make_client(mosquitto.url, "test-run-listener")
    listener.on_connect = lambda c, *_: c.subscribe("cramp/v1/p-017/crampwatch/#", qos=1)
    listener.on_message = on_message
    connect(listener)
    time.sleep(0.3)
    spool = tmp_path / "spool.db"
    try:
        args = build_parser().parse_args(
            [
                "run",
                "--profile",
                "crampwatch",
                "--patient",
                "p-017",
                "--mqtt-url",
                mosquitto.url,
                "--spool-path",
                str(spool),
                "--duration",
                "2",
                "--status-interval-s",
                "0.5",
            ]
        )
        # The real command, parsed from real arguments; only the radio is virtual (no Bluetooth here).
        assert run_command.run(args, runner_cls=VirtualRadioRunner) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                done = any(f.flags & FLAG_END_OF_STREAM for f in frames if f.kind is StreamKind.EMG)
                stopped = bool(statuses) and statuses[-1]["collector"] == "stopped"
            if done and stopped:
                break
            time.sleep(0.05)
    finally:
        listener.loop_stop()
        listener.disconnect()
    emg = [f for f in frames if f.kind is StreamKind.EMG]
    assert [f.seq for f in emg] == list(range(len(emg)))
    assert emg[-1].flags & FLAG_END_OF_STREAM  # --duration ends the night for the detector
    assert sum(f.n_samples for f in emg) > 500  # ~2 s at 500 Hz, minus scan and connect time
    assert any(s["link"] == "streaming" for s in statuses)
    assert statuses[-1]["collector"] == "stopped" and statuses[-1]["spool_frames"] == 0
    # Privacy: the sensor's Bluetooth address identifies its wearer; it stays on the bedside computer.
    assert not any("address" in s for s in statuses)
    assert spool.exists()
