"""Live and offline agree exactly: ``cramp-collector replay`` -> mosquitto -> DetectorService gives the
events ``detect_recording`` finds in the same file, to the sample, at any speed and MQTT frame size.

The recordings are simulated nights written as EDF+ (EDF quantises, so both sides read the same file).
All replays of one test run at once, each as its own device, against one real broker and one service.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from crampwatch.formats import read_recording
from crampwatch.formats.edf import write_edf
from crampwatch.simulate import Night
from detector.config import DetectorSettings
from detector.events import Event
from detector.model import Model, load_model
from detector.offline import detect_recording
from detector.service import DetectorService
from tests.servers import MosquittoServer

pytestmark = pytest.mark.integration

DURATION_S = 120.0
#: Seeds whose two minutes hold events, with different rates and channel counts (EMG 500/2000/200 Hz).
SEEDS = (2, 13, 12)
PATIENT = "agree"
GIVEN_START_NS = 1_767_225_600_000_000_000


@dataclass(frozen=True)
class Case:
    seed: int
    speed: str
    frame_s: float
    start_ns: int | None = None

    @property
    def device(self) -> str:
        return f"s{self.seed}-x{self.speed}-f{self.frame_s:g}".replace(".", "_")

    def flags(self) -> list[str]:
        start = [] if self.start_ns is None else ["--start-ns", str(self.start_ns)]
        return ["--speed", self.speed, "--frame-s", str(self.frame_s), *start]


#: Frames of 0.04 to 2 s (from a single ACC sample to thousands of EMG samples); paced and unpaced.
CASES = (
    Case(2, "max", 0.25),
    Case(2, "20", 0.04),
    Case(13, "max", 1.0, start_ns=GIVEN_START_NS),
    Case(12, "max", 2.0),
)


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A real mosquitto without ``autosave_on_changes``.

    With it (tests/servers.py, deploy/), mosquitto rewrites its whole database for every message queued
    for the detector's persistent session, and delivers only about 40 frames/s: 6000 frames of 40 ms
    would take 150 s. (Reported; crash safety is not what this test is about.)
    """
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    lines = server.conf_path.read_text().splitlines()
    server.conf_path.write_text("\n".join(line for line in lines if not line.startswith("autosave")) + "\n")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("nights")
    paths = {}
    for seed in SEEDS:
        path = folder / f"night{seed}.edf"
        write_edf(Night(DURATION_S, seed, event_density=3).recording(), path)
        paths[seed] = path
    return paths


@pytest.fixture
def one_thread(model: Model) -> Iterator[None]:
    """sklearn's OpenMP threads spin against the replay processes on a 2-core machine: use one.

    (threadpoolctl only limits libraries already loaded, hence after the model.)
    """
    with threadpool_limits(1):
        yield


class OneThreadService(DetectorService):
    """The service with sklearn limited to one OpenMP thread in its worker thread.

    The OpenMP limit is per thread, so the fixture above does not reach the worker. With two OpenMP
    threads on a busy 2-core machine each prediction of the shipped model takes about 250 ms instead of
    15 ms (reported).
    """

    def _work(self) -> None:
        with threadpool_limits(1):
            super()._work()


def _service(broker: MosquittoServer, tmp_path: Path, model: Model) -> DetectorService:
    settings = DetectorSettings(
        mqtt_url=broker.url,
        client_id=f"det-{tmp_path.name[-20:]}",
        events_file=tmp_path / "events.jsonl",
        dead_letter_file=tmp_path / "dead-letter.jsonl",
    )
    return OneThreadService(settings, model)


def _replay(url: str, path: Path, device: str, flags: list[str]) -> subprocess.Popen[bytes]:
    """``cramp-collector replay`` as its own process, as in real use (in-process it would compete with
    the detector's worker for the GIL)."""
    argv = ["replay", str(path), "--mqtt-url", url, "--patient", PATIENT, "--device", device, "--no-progress"]
    return subprocess.Popen([sys.executable, "-m", "collector", *argv, *flags, "--log-level", "WARNING"])


def _key(e: Event) -> tuple[str, float, float, float, float]:
    return (e.type, e.onset_s, e.offset_s, e.confidence, e.peak_uv)


def _live(
    broker: MosquittoServer, tmp_path: Path, model: Model, cases: tuple[Case, ...], nights: dict[int, Path]
) -> dict[str, list[Event]]:
    """Replay every case at once, each as its own device; the events the service found per device."""
    service = _service(broker, tmp_path, model)
    worker = service.start()
    try:
        replays = [_replay(broker.url, nights[c.seed], c.device, c.flags()) for c in cases]
        assert [p.wait(timeout=240) for p in replays] == [0] * len(cases)
        done = service.wait_finished({(PATIENT, c.device) for c in cases}, timeout_s=240)
        assert done, f"not finished: {({c.device for c in cases}) - {d for _, d in service.stats.finished_devices}}"
    finally:
        service.stop()
        worker.join(10)
        service.close()
    assert service.stats.rejected_frames == 0
    found: dict[str, list[Event]] = {c.device: [] for c in cases}
    for e in service.events_log:
        assert e.patient == PATIENT
        found[e.device].append(e)
    return found


def _file_start_ns(path: Path) -> int:
    start = read_recording(path).meta["start"]
    assert isinstance(start, datetime)
    return round(start.replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def test_replay_through_the_service_equals_offline_detection(
    broker: MosquittoServer, tmp_path: Path, nights: dict[int, Path], model: Model, one_thread: None
) -> None:
    offline = {seed: [_key(e) for e in detect_recording(read_recording(path), model)] for seed, path in nights.items()}
    assert sum(len(v) for v in offline.values()) >= 3, f"the test nights should hold events: {offline}"
    live = _live(broker, tmp_path, model, CASES, nights)
    for case in CASES:
        assert [_key(e) for e in live[case.device]] == offline[case.seed], case
        expected_start = case.start_ns if case.start_ns is not None else _file_start_ns(nights[case.seed])
        assert {e.start_ns for e in live[case.device]} <= {expected_start}, case


def test_frames_longer_than_the_acc_wait_agree_too(
    broker: MosquittoServer, tmp_path: Path, nights: dict[int, Path], model: Model, one_thread: None
) -> None:
    offline = [_key(e) for e in detect_recording(read_recording(nights[2]), model)]
    case = Case(2, "max", 15.0)
    live = _live(broker, tmp_path, model, (case,), nights)
    assert [_key(e) for e in live[case.device]] == offline
