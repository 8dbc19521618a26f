"""Live benchmark: how many simulated patients one detector process keeps up with in real time.

``python -m benchmarks.run live [--patients 50,200,500,1000] [--seconds 60] [--json FILE]``

For each patient count N: a mosquitto on a free port (no persistence: the broker's disk is not what is
measured), a publisher in a separate process replaying pre-rendered 0.25 s frames (1 kHz x 2 EMG, 50 Hz
x 3 ACC, QoS 1, as the collector sends them) for N patients in real time, and one ``DetectorService``
in this process with a JSON-lines event sink. Reported per N:

- ``frame_p50_s`` / ``frame_p99_s``: from a frame's last sample being due (the publisher sends each frame
  when its last sample would exist) to the end of the detector round that processed it and wrote what it
  completed;
- ``event_p50_s`` / ``event_p99_s``: from the arrival of the newest sample the detector had from that
  device to the event being written (the sink's clock);
- ``backlog_s``: how late the last frame was finished after its due time (0 means it kept up);
- ``state_kib_per_stream``: the bytes of numpy arrays and Python objects one device's detection state
  holds (mean over devices, mid-run), and ``rss_mib_per_stream``: the process RSS growth over N;
- ``lost_frames``: published minus processed (must be 0), ``publisher_late_s``: how far the publisher
  itself fell behind its schedule (if it is large, the publisher, not the detector, was the limit);
- ``sustained``: no frame lost, frame p99 <= 2 s, backlog <= 2 s, publisher on time.

Nights are rendered once (8 distinct ones, reused across patients under their own ids) so rendering is not
measured. Everything runs on one machine: broker, publisher and detector share its cores, so say how
loaded it was next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from crampwatch import wire
from crampwatch.recording import Recording
from crampwatch.simulate import simulate

START_NS = 1_700_000_000_000_000_000
FRAME_S = 0.25
TEMPLATES = 8
SUSTAINED_P99_S = 2.0
_HEADER = struct.Struct("<qdI")  # device t0 (ns), rate (Hz), samples per channel at offset 16
_RECORD = struct.Struct("<HIBI")  # template, tick, stream (0 EMG, 1 ACC), payload length


def save_frames(path: Path, templates: list[list[tuple[int, str, bytes]]]) -> None:
    """Pre-rendered frames for the publisher process (a flat binary file, nothing executable in it)."""
    with open(path, "wb") as fh:
        for t, frames in enumerate(templates):
            for tick, stream, payload in frames:
                fh.write(_RECORD.pack(t, tick, 0 if stream == "emg" else 1, len(payload)) + payload)


def load_frames(path: Path) -> list[list[tuple[int, str, bytes]]]:
    data = path.read_bytes()
    out: list[list[tuple[int, str, bytes]]] = []
    i = 0
    while i < len(data):
        t, tick, stream, n = _RECORD.unpack_from(data, i)
        i += _RECORD.size
        while len(out) <= t:
            out.append([])
        out[t].append((tick, "emg" if stream == 0 else "acc", data[i : i + n]))
        i += n
    return out


def render(seconds: float, *, templates: int = TEMPLATES) -> list[list[tuple[int, str, bytes]]]:
    """Per template night: (tick, stream, payload), tick = the FRAME_S slot in which the frame's last sample lies."""
    out = []
    for seed in range(templates):
        rec = simulate(seconds, seed=100 + seed, event_density=4.0)
        frames = []
        for f in rec.frames(FRAME_S, start_ns=START_NS):
            end_s = (f.t0_ns - START_NS) / 1e9 + f.n_samples / f.rate_hz
            frames.append((int(np.ceil(end_s / FRAME_S - 1e-9)), f.kind.value, wire.encode(f)))
        out.append(sorted(frames, key=lambda x: x[0]))
    return out


def _frame_end_s(payload: bytes) -> float:
    t0_ns, rate, n = _HEADER.unpack_from(payload, 16)
    return float((t0_ns - START_NS) / 1e9 + n / rate)


# -- the publisher (a separate process) ---------------------------------------------------------------


def publish(frames_file: Path, url: str, patients: int) -> dict[str, float]:
    """Send every patient's frames when their last sample is due (wall time ``t0`` + frame end).

    ``t0`` is 1 s after this process is ready (frames loaded, connected); it is printed first, on its own
    line, so the detector knows when each frame was due.
    """
    from crampwatch.mqtt import connect, make_client

    templates = load_frames(frames_file)
    client = make_client(url, f"bench-publisher-{os.getpid()}", session_expiry_s=0)
    client.max_inflight_messages_set(10_000)  # QoS 1 acks must not throttle the schedule
    acked = [0]
    done = threading.Event()

    def on_publish(*_: object) -> None:
        acked[0] += 1

    client.on_publish = on_publish
    connect(client)
    ticks: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for i in range(patients):
        for tick, stream, payload in templates[i % len(templates)]:
            ticks[tick].append((f"cramp/v1/p{i:05d}/d1/{stream}", payload))
    t0 = time.time() + 1.0
    print(f"t0 {t0!r}", flush=True)
    sent, late = 0, 0.0
    for tick in sorted(ticks):
        due = t0 + tick * FRAME_S
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        late = max(late, time.time() - due)
        for topic, payload in ticks[tick]:
            client.publish(topic, payload, qos=1)
            sent += 1
    deadline = time.monotonic() + 120
    while acked[0] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    client.disconnect()
    client.loop_stop()
    return {"published": sent, "acked": acked[0], "publisher_late_s": round(late, 3)}


# -- the detector (this process) -----------------------------------------------------------------------


def state_bytes(root: object, skip: tuple[type, ...]) -> int:
    """Bytes held by ``root``'s object graph: numpy buffers plus Python objects (``skip`` types not entered)."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes if obj.base is None else 0
            if obj.base is not None:
                stack.append(obj.base)
            continue
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
        slots: tuple[str, ...] = getattr(type(obj), "__slots__", ())
        stack.extend(getattr(obj, s) for s in slots if hasattr(obj, s))
    return total


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live(patients: int, seconds: float = 60.0, *, workdir: Path | None = None) -> dict[str, Any]:
    """One run: ``patients`` simulated patients for ``seconds`` of real time through a real mosquitto."""
    from detector.config import DetectorSettings
    from detector.events import Event, Summary
    from detector.model import Model, load_model
    from detector.service import DetectorService
    from detector.sinks import JsonlSink
    from tests.servers import MosquittoServer

    tmp = Path(workdir or tempfile.mkdtemp(prefix="cramp-live-"))
    frames_file = tmp / f"frames-{seconds:g}s-{FRAME_S:g}.bin"
    if not frames_file.exists():
        save_frames(frames_file, render(seconds))
    broker = MosquittoServer(tmp / f"mosquitto-{patients}")
    # Not the tests' crash-safe broker: saving its database on every change would be the bottleneck.
    broker.conf_path.write_text(
        f"listener {broker.port} {broker.host}\nallow_anonymous true\nmax_queued_messages 0\n"
        f"max_inflight_messages 0\nlog_dest file {broker.log_path}\n" + ("user root\n" if os.geteuid() == 0 else "")
    )
    broker.start()
    model = load_model()
    frame_lat: list[float] = []
    event_lat: list[float] = []
    rounds: list[tuple[float, int]] = []  # (seconds, messages) of each worker round
    newest: dict[tuple[str, str], float] = {}
    t0_box = [0.0]

    class TimedSink(JsonlSink):
        def write_events(self, events: list[Event]) -> None:
            super().write_events(events)
            now = time.time()
            event_lat.extend(now - (t0_box[0] + newest[(e.patient, e.device)]) for e in events)

        def write_summaries(self, summaries: list[Summary]) -> None:
            pass

    class TimedService(DetectorService):
        def handle_batch(self, messages: list[tuple[str, bytes]]) -> None:
            ends = []
            for topic, payload in messages:
                parts = topic.split("/")
                if len(parts) == 5 and len(payload) > 40:
                    end = _frame_end_s(payload)
                    key = (parts[2], parts[3])
                    newest[key] = max(newest.get(key, 0.0), end)
                    ends.append(end)
            start = time.time()
            super().handle_batch(messages)
            now = time.time()
            frame_lat.extend(now - (t0_box[0] + e) for e in ends)
            rounds.append((now - start, len(messages)))

    settings = DetectorSettings.model_validate(
        {
            "mqtt_url": broker.url,
            "client_id": f"bench-detector-{patients}",
            "publish_events": False,
            "events_file": tmp / f"events-{patients}.jsonl",
            "dead_letter_file": tmp / "dead.jsonl",
            "max_devices": max(5000, patients),
        }
    )
    service = TimedService(settings, model, sinks=[TimedSink(tmp / f"events-{patients}.jsonl")])
    rss0 = _rss_bytes()
    cpu0 = time.process_time()
    worker = service.start()
    pub = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.live", "--publish", str(frames_file), "--url", broker.url,
         "--patients", str(patients), "--frame-s", str(FRAME_S)],
        stdout=subprocess.PIPE, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert pub.stdout is not None
    t0 = float(pub.stdout.readline().split()[1])
    t0_box[0] = t0
    # Mid-run: measure the state of the devices and the process RSS while every stream is open.
    time.sleep(max(0.0, t0 + seconds * 0.8 - time.time()))
    rss_mid = _rss_bytes()
    devices = list(service.devices.values())[:20]
    state = [state_bytes(d, (Model, type(service))) for d in devices]
    out, _ = pub.communicate(timeout=seconds + 300)
    published = json.loads(out.decode().strip().splitlines()[-1])
    keys = {(f"p{i:05d}", "d1") for i in range(patients)}
    finished = service.wait_finished(keys, timeout_s=seconds + 60)
    backlog = time.time() - (t0 + seconds)
    cpu_s = time.process_time() - cpu0  # this process: the detector's threads (and the mid-run state walk)
    service.stop()
    worker.join(10)
    service.close()
    broker.kill()
    data_messages = service.stats.messages
    fl, el = np.array(frame_lat), np.array(event_lat)
    result: dict[str, Any] = {
        "patients": patients,
        "seconds": seconds,
        "frames_published": published["published"],
        # Only known once every device finished: before that, frames may still wait in the broker.
        "lost_frames": published["published"] - data_messages if finished else None,
        "unprocessed_frames": 0 if finished else published["published"] - data_messages,
        "cpu_s": round(cpu_s, 1),
        # Load-independent capacity: stream seconds handled per CPU second of the detector process.
        "patients_per_core": round(patients * seconds / cpu_s, 1) if cpu_s else None,
        "all_finished": finished,
        "frame_p50_s": round(float(np.percentile(fl, 50)), 3) if fl.size else None,
        "frame_p99_s": round(float(np.percentile(fl, 99)), 3) if fl.size else None,
        "events": int(el.size),
        "event_p50_s": round(float(np.percentile(el, 50)), 3) if el.size else None,
        "event_p99_s": round(float(np.percentile(el, 99)), 3) if el.size else None,
        "backlog_s": round(max(0.0, float(fl.max()) if fl.size else backlog), 2),
        "state_kib_per_stream": round(float(np.mean(state)) / 1024, 1) if state else None,
        "rss_mib_per_stream": round((rss_mid - rss0) / patients / 2**20, 3),
        "publisher_late_s": published["publisher_late_s"],
        "rounds": len(rounds),
        "round_p99_s": round(float(np.percentile([r[0] for r in rounds], 99)), 3) if rounds else None,
        "round_max_s": round(max(r[0] for r in rounds), 3) if rounds else None,
        "batch_max": max(r[1] for r in rounds) if rounds else 0,
        "internal_errors": service.stats.internal_errors,
    }
    result["sustained"] = bool(
        result["lost_frames"] == 0
        and finished
        and fl.size
        and result["frame_p99_s"] <= SUSTAINED_P99_S
        and result["publisher_late_s"] <= 1.0
    )
    return result


def capacity(patients: int, seconds: float, templates: list[list[tuple[int, str, bytes]]]) -> dict[str, Any]:
    """The detector's work for ``patients`` streams, in this process, without a broker or a clock.

    The worker's rounds are replayed as they come in real time: each round holds every patient's frames
    that complete in one FRAME_S slot (EMG and ACC), and goes through ``DetectorService.handle_batch``
    (decode, checks, features of every device, ONE model call, segments and events, the sinks' write).
    ``patients_per_core`` is stream seconds per CPU second of that work (what one core sustains in real
    time); ``round_p50_s`` / ``round_p99_s`` are the CPU seconds a round takes, which a frame waits at most
    on top of its own length when the core keeps up. State per stream as in :func:`live`.
    """
    from detector.config import DetectorSettings
    from detector.events import Event, Summary
    from detector.model import Model, load_model
    from detector.service import DetectorService

    class NullSink:
        name = "null"
        events = 0

        def write_events(self, events: list[Event]) -> None:
            NullSink.events += len(events)

        def write_summaries(self, summaries: list[Summary]) -> None:
            pass

        def close(self) -> None:
            pass

    tmp = Path(tempfile.mkdtemp(prefix="cramp-capacity-"))
    settings = DetectorSettings.model_validate(
        {"publish_events": False, "dead_letter_file": tmp / "dead.jsonl", "max_devices": max(5000, patients)}
    )
    model = load_model()
    service = DetectorService(settings, model, sinks=[NullSink()])
    ticks: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for i in range(patients):
        for tick, stream, payload in templates[i % len(templates)]:
            ticks[tick].append((f"cramp/v1/p{i:05d}/d1/{stream}", payload))
    rss0 = _rss_bytes()
    rounds: list[float] = []
    state: list[int] = []
    order = sorted(ticks)
    for n, tick in enumerate(order):
        c0 = time.process_time()
        service.handle_batch(ticks[tick])
        rounds.append(time.process_time() - c0)
        if n == int(len(order) * 0.8):
            rss_mid = _rss_bytes()
            state = [state_bytes(d, (Model, type(service))) for d in list(service.devices.values())[:20]]
    cpu_s = float(np.sum(rounds))
    result = {
        "patients": patients,
        "seconds": seconds,
        "frame_s": FRAME_S,
        "messages": service.stats.messages,
        "cpu_s": round(cpu_s, 2),
        "cpu_ms_per_message": round(1000 * cpu_s / max(1, service.stats.messages), 3),
        "patients_per_core": round(patients * seconds / cpu_s, 1) if cpu_s else None,
        "round_p50_s": round(float(np.percentile(rounds, 50)), 3),
        "round_p99_s": round(float(np.percentile(rounds, 99)), 3),
        "events": NullSink.events,
        "state_kib_per_stream": round(float(np.mean(state)) / 1024, 1) if state else None,
        "rss_mib_per_stream": round((rss_mid - rss0) / patients / 2**20, 3),
        "internal_errors": service.stats.internal_errors,
        "rejected_frames": service.stats.rejected_frames,
    }
    service.close()
    return result


CAPACITY_COLUMNS = (
    "patients", "frame_s", "messages", "cpu_s", "cpu_ms_per_message", "patients_per_core", "round_p50_s",
    "round_p99_s", "events", "state_kib_per_stream", "rss_mib_per_stream",
)  # fmt: skip


def open_delay(nights: int = 8, seconds: float = 600.0, *, density: float = 6.0) -> dict[str, Any]:
    """Onset -> open event on ``nights`` simulated nights (the training simulator's, seeds 200+)."""
    return open_study([simulate(seconds, seed=200 + seed, event_density=density) for seed in range(nights)])


def open_sets(heldout: int) -> dict[str, list[Recording]]:
    """The recordings of the open-event study: dense simulated nights, held-out nights as `evaluate
    --simulated` scores them (30 min, density 3) and the independent scenario suite (seed 0)."""
    from crampwatch.scenarios import SCENARIOS, build
    from detector.train.data import heldout_recording, heldout_seed

    return {
        "dense (8 x 10 min, density 6)": [simulate(600.0, seed=200 + s, event_density=6.0) for s in range(8)],
        f"held-out ({heldout} x 30 min, density 3)": [
            heldout_recording(heldout_seed(i, 1), 1800.0, 3.0) for i in range(heldout)
        ],
        f"scenarios ({len(SCENARIOS)})": [build(sc, seed=0) for sc in SCENARIOS],
    }


def open_study(recordings: list[Recording]) -> dict[str, Any]:
    """Open events of ``recordings`` fed as live 0.25 s frames, one device each, in stream time.

    The delay of an open event is the device time of the newest sample the detector had when it produced
    it, minus the onset of the final event that confirmed it (same id): how long after the event's
    onset, as finally decided, carers heard of it. Wall-clock latency (the live benchmark) adds to it.
    Also: how many open events were withdrawn (``cancelled``), per hour of recording, and how many final
    events came without an open one before them.
    """
    from detector.model import load_model
    from detector.stream import DeviceStreams

    model = load_model()
    delays: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    hours = 0.0
    for i, rec in enumerate(recordings):
        hours += rec.duration_s / 3600.0
        streams = DeviceStreams(model, "p", f"d{i}", open_events=True)
        newest = 0.0
        opened: dict[str, float] = {}
        for f, result in [*((f, streams.on_frame(f)) for f in rec.frames(FRAME_S)), (None, streams.finish())]:
            if f is not None and f.kind.value == "emg":
                newest = f.t0_ns / 1e9 + f.n_samples / f.rate_hz
            for e in result.events:
                if e.type == "plm":
                    continue
                counts[f"{e.type}_{e.state}"] += 1
                if e.state == "open":
                    opened[e.event_id] = newest
                elif e.state == "final":
                    delays[f"{e.type}_final"].append(newest - e.onset_s)
                    if e.event_id in opened:
                        delays[f"{e.type}_open"].append(opened[e.event_id] - e.onset_s)
                    else:
                        counts[f"{e.type}_final_unannounced"] += 1
    out: dict[str, Any] = {"recordings": len(recordings), "hours": round(hours, 2)}
    for key, d in sorted(delays.items()):
        out[f"{key}_n"] = len(d)
        out[f"{key}_p50_s"] = round(float(np.percentile(d, 50)), 1)
        out[f"{key}_p99_s"] = round(float(np.percentile(d, 99)), 1)
    out.update(sorted(counts.items()))
    cancelled = counts["cramp_cancelled"] + counts["spasm_cancelled"]
    out["cancelled_per_hour"] = round(cancelled / hours, 1)
    return out


COLUMNS = (
    "patients", "sustained", "lost_frames", "patients_per_core", "frame_p50_s", "frame_p99_s", "events",
    "event_p50_s", "event_p99_s",
    "backlog_s", "state_kib_per_stream", "rss_mib_per_stream", "publisher_late_s", "round_p99_s", "round_max_s",
    "batch_max",
)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    global FRAME_S
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", default="50,200,500,1000", help="comma-separated patient counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="real-time seconds per run (default 60)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--open-delay-nights", type=int, default=8, help="10-minute nights for the onset->open delay (0: skip)"
    )
    parser.add_argument(
        "--open-study",
        type=int,
        metavar="HELDOUT_NIGHTS",
        help="only the open-event study (open_sets): delays and cancelled opens per hour, then exit",
    )
    parser.add_argument("--stop-when-behind", action="store_true", help="skip larger counts after one fails")
    parser.add_argument(
        "--frame-s", type=float, default=FRAME_S, help="frame length in seconds (default 0.25, the collector's)"
    )
    parser.add_argument(
        "--capacity",
        action="store_true",
        help="no broker and no clock: the detector's CPU per patient in this process (see capacity())",
    )
    parser.add_argument("--publish", type=Path, help=argparse.SUPPRESS)  # the publisher process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    FRAME_S = args.frame_s
    if args.capacity:
        templates = render(args.seconds)
        caps = []
        print("  ".join(f"{c:>12}" for c in CAPACITY_COLUMNS), flush=True)
        for n in (int(x) for x in args.patients.split(",")):
            r = capacity(n, args.seconds, templates)
            caps.append(r)
            print("  ".join(f"{r[c]!s:>12}" for c in CAPACITY_COLUMNS), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"capacity": caps}, indent=1) + "\n")
        return
    if args.open_study is not None:
        study = {name: open_study(recs) for name, recs in open_sets(args.open_study).items()}
        for name, r in study.items():
            print(f"{name}: {json.dumps(r)}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"open_study": study}, indent=1) + "\n")
        return
    if args.publish:
        print(json.dumps(publish(args.publish, args.url, int(args.patients))))
        return
    delay = None
    if args.open_delay_nights:
        delay = open_delay(args.open_delay_nights)
        print("onset -> open event (stream time):", json.dumps(delay), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="cramp-live-"))
    results = []
    print("  ".join(f"{c:>12}" for c in COLUMNS), flush=True)
    for n in (int(x) for x in args.patients.split(",")):
        r = live(n, args.seconds, workdir=workdir)
        results.append(r)
        print("  ".join(f"{r[c]!s:>12}" for c in COLUMNS), flush=True)
        if args.stop_when_behind and not r["sustained"]:
            break
    if args.json:
        body = {"live": results, "open_delay": delay}
        args.json.write_text(json.dumps(body, indent=1) + "\n")


if __name__ == "__main__":
    main()
