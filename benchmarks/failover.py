"""Scale-out benchmark (issue 16, item 4): N patients through 1 and 2 detector processes, with a SIGKILL.

``python -m benchmarks.run failover --patients 200 --seconds 60 --kill-at 40 [--json failover.json]``

It starts a real mosquitto (the durable persistence of the tests and the deployment) and a real influxd
1.6.7 behind the v2 write adapter (:mod:`tests.servers`), and two deployments of ``cramp-detector serve``
on the same sharded topics (``--shards 4``), each with its own client id, so one publication feeds both:

* **one**: one process serving all 4 shards, writing database ``one``;
* **two**: process a (shards 0-1) and process b (shards 2-3, ``--standby-for all``), writing ``two``.

Every patient has its own simulated night (2 EMG channels at 1 kHz, 3-axis accelerometer at 50 Hz, 2 s
frames). The publisher sends every night up to ``--kill-at`` seconds, waits until process a has stored
that much of its patients' nights, SIGKILLs a, and sends the rest. Process b takes a's shards over
(state file, checkpoint, journal, then the MQTT session). With ``--kill-at 0`` nothing is killed.

Compared, per patient and exactly: the final events and the number of 1 s summaries in InfluxDB of both
deployments against offline detection of the same frames. Reported: those counts and whether they are
equal, the events that were open in a's patients at the kill, the seconds from the kill to b serving
a's shards, and each process's CPU time (user + system, ``os.wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from benchmarks.run import machine
from crampwatch import wire
from crampwatch.frames import Frame
from crampwatch.mqtt import connect, make_client
from crampwatch.simulate import simulate
from crampwatch.topics import StreamTopic, device_prefix, shard_of
from tests.servers import InfluxServer, InfluxV2WriteAdapter, MosquittoServer

PREFIX = "cramp/v1"
SHARDS = 4
DEVICE = "d1"
START_NS = 1_767_225_600_000_000_000
FRAME_S = 2.0
#: (patient, type, onset ms, duration s), as stored.
Stored = tuple[str, str, int, float]


class Serve:
    """One ``cramp-detector serve`` process with its log in a file."""

    def __init__(self, log: Path, args: list[str]) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "detector", "serve", *args], stdout=out, stderr=subprocess.STDOUT
            )
        self.cpu_s = 0.0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, count: int = 1, timeout_s: float = 1800.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.log.count(text) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"benchmarks.failover: {text!r} x {count} not in {self.log_path}:\n{self.log[-3000:]}")
            time.sleep(0.2)

    def end(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        _, _, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = 0  # reaped here; keeps Popen from waiting again
        self.cpu_s = usage.ru_utime + usage.ru_stime


def render(
    patients: list[str], seconds: float, seed: int
) -> tuple[dict[str, list[Frame]], list[Stored], dict[str, int]]:
    """Each patient's frames, and what offline detection of exactly those frames finds."""
    from detector.model import load_model
    from detector.stream import DeviceStreams

    model = load_model()
    frames: dict[str, list[Frame]] = {}
    events: list[Stored] = []
    summaries: dict[str, int] = {}
    for i, patient in enumerate(patients):
        frames[patient] = list(simulate(seconds, seed=seed + i, event_density=6.0).frames(FRAME_S, start_ns=START_NS))
        streams = DeviceStreams(model, patient, DEVICE)
        summaries[patient] = 0
        for frame in frames[patient]:
            out = streams.on_frame(frame)
            events += [(patient, e.type, e.onset_ns // 10**6, float(e.duration_s)) for e in out.events]
            summaries[patient] += len(out.summaries)
    return frames, sorted(events), summaries


def publish(url: str, frames: dict[str, list[Frame]], from_s: float, to_s: float) -> int:
    client = make_client(url, f"bench-pub-{os.getpid()}")
    connect(client)
    infos = [
        client.publish(
            StreamTopic(patient, DEVICE, f.kind).render(device_prefix(PREFIX, patient, SHARDS)), wire.encode(f), qos=1
        )
        for patient, mine in frames.items()
        for f in mine
        if from_s <= (f.t0_ns - START_NS) / 1e9 < to_s
    ]
    for info in infos:
        info.wait_for_publish(600)
    client.loop_stop()
    client.disconnect()
    return len(infos)


def logged_at(log: str, text: str) -> float:
    """The wall time of the first log line holding ``text`` (the log's local-time stamp, to the millisecond)."""
    line = next(line for line in log.splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def stored(influx: InfluxServer, db: str) -> tuple[list[Stored], dict[str, int]]:
    rows = influx.query('SELECT duration_s, "type" FROM cramp_events WHERE duration_s >= 0 GROUP BY patient', db=db)
    events = sorted((str(r["patient"]), str(r["type"]), int(r["time"]), float(r["duration_s"])) for r in rows)
    counts = influx.query("SELECT count(emg_rms_uv) FROM cramp_summary GROUP BY patient", db=db)
    return events, {str(r["patient"]): int(r["count"]) for r in counts}


def run(n: int, seconds: float, kill_at: float, seed: int, workdir: Path) -> dict[str, Any]:
    patients = [f"p{i:03d}" for i in range(n)]
    print(f"rendering {n} nights of {seconds:g} s and detecting them offline ...", file=sys.stderr, flush=True)
    frames, expected, summaries = render(patients, seconds, seed)
    a_patients = {p for p in patients if shard_of(p, SHARDS) < 2}
    broker, influx = MosquittoServer(workdir / "mosquitto"), InfluxServer(workdir / "influxd")
    broker.start()
    influx.start()
    adapter = InfluxV2WriteAdapter(influx.url)
    result: dict[str, Any] = {"patients": n, "seconds": seconds, "kill_at_s": kill_at, "machine": machine()}
    procs: list[Serve] = []
    try:
        for db in ("one", "two"):
            influx.create_database(db)

        def args(client_id: str) -> list[str]:
            return [
                "--mqtt-url", broker.url, "--client-id", client_id, "--shards", str(SHARDS),
                "--influx-url", adapter.url, "--influx-token", "x", "--influx-bucket", f"{client_id}/autogen",
                "--state-dir", str(workdir / "state"), "--dead-letter-file", str(workdir / f"dead-{client_id}.jsonl"),
                "--publish-events", "false", "--standby-poll-s", "1", "--max-devices", str(n + 10),
            ]  # fmt: skip

        one = Serve(workdir / "one.log", args("one"))
        a = Serve(workdir / "a.log", [*args("two"), "--own-shards", "0-1"])
        procs += [one, a]
        for p in (one, a):
            p.wait_for("taking frames")
        b = Serve(workdir / "b.log", [*args("two"), "--own-shards", "2-3", "--standby-for", "all"])  # after a
        procs.append(b)
        b.wait_for("taking frames")
        started = time.perf_counter()
        first = kill_at if kill_at > 0 else float("inf")
        sent = publish(broker.url, frames, 0.0, first)
        if kill_at > 0:
            while True:  # until a has stored kill_at - 5 s of each of its patients' nights
                _, done = stored(influx, "two")
                if all(done.get(p, 0) >= kill_at - 5 for p in a_patients):
                    break
                time.sleep(1.0)
            a.end(signal.SIGKILL)
            killed = time.time()
            open_at_kill = [
                e
                for e in expected
                if e[0] in a_patients and e[2] < START_NS // 10**6 + kill_at * 1000 < e[2] + e[3] * 1000
            ]
            result["events_open_in_a_at_kill"] = len(open_at_kill)
            sent += publish(broker.url, frames, kill_at, float("inf"))
            b.wait_for("taken over from a process that is gone", count=2)
            result["noticed_s"] = logged_at(b.log, "taking them over") - killed
            result["takeover_s"] = logged_at(b.log, "serving shard 1 of 4 (taken over") - killed
        result["frames_published"] = sent
        one.wait_for("end of stream; detection finished", count=n)
        by_a = a.log.count("end of stream; detection finished")
        b.wait_for("end of stream; detection finished", count=n - by_a)
        result["wall_s"] = time.perf_counter() - started
        for p in (one, b) if kill_at > 0 else (one, a, b):
            p.end()
        result["cpu_s"] = {"one": one.cpu_s, "two_a": a.cpu_s, "two_b": b.cpu_s}
        result["patients_a"] = len(a_patients)
        result["patients_b"] = n - len(a_patients)
        result["events_offline"] = len(expected)
        result["summaries_offline"] = sum(summaries.values())
        for db in ("one", "two"):
            events, counts = stored(influx, db)
            result[f"events_{db}"] = len(events)
            result[f"summaries_{db}"] = sum(counts.values())
            result[f"events_equal_offline_{db}"] = events == expected
            result[f"summaries_equal_offline_{db}"] = counts == summaries
        result["dead_letters"] = sum(1 for _ in workdir.glob("dead-*.jsonl"))
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        adapter.stop()
        influx.kill()
        broker.kill()
    return result


def table(r: dict[str, Any]) -> str:
    lines = [
        f"{r['patients']} patients x {r['seconds']:g} s, {r['frames_published']} frames, shards 4; "
        f"offline: {r['events_offline']} events, {r['summaries_offline']} summaries",
        f"1 process : {r['events_one']} events, {r['summaries_one']} summaries, equal to offline: "
        f"{r['events_equal_offline_one'] and r['summaries_equal_offline_one']}, CPU {r['cpu_s']['one']:.1f} s",
        f"2 processes: {r['events_two']} events, {r['summaries_two']} summaries, equal to offline: "
        f"{r['events_equal_offline_two'] and r['summaries_equal_offline_two']}, CPU a {r['cpu_s']['two_a']:.1f} s "
        f"({r['patients_a']} patients), b {r['cpu_s']['two_b']:.1f} s ({r['patients_b']} patients)",
    ]
    if r["kill_at_s"] > 0:
        lines.append(
            f"a SIGKILLed at {r['kill_at_s']:g} s of the nights with {r['events_open_in_a_at_kill']} events open in "
            f"its patients; b noticed {r['noticed_s']:.1f} s and served a's 2 shards {r['takeover_s']:.1f} s after the "
            "kill (while busy with its own patients)"
        )
    m = r["machine"]
    lines.append(
        f"wall {r['wall_s']:.0f} s from the first frame; {m['cpus']} CPUs, load {m['load_average'][0]:.1f} at start"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run failover",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--patients", type=int, default=200, help="patients, one night each (default 200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per night (default 60)")
    parser.add_argument("--kill-at", type=float, default=40.0, help="SIGKILL process a at this second (0: never)")
    parser.add_argument("--seed", type=int, default=500, help="seed of the first night (default 500)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.patients < 2 or not args.seconds > 0 or not 0 <= args.kill_at < args.seconds - 5:
        parser.error("--patients must be at least 2, --seconds positive, --kill-at 0 or below --seconds - 5")
    with TemporaryDirectory(prefix="cramp-failover-") as tmp:
        result = run(args.patients, args.seconds, args.kill_at, args.seed, Path(tmp))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    equal = all(result[f"{k}_equal_offline_{db}"] for k in ("events", "summaries") for db in ("one", "two"))
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
