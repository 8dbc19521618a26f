"""Soak test (issue 17): N patients in real time through the whole live path for M minutes.

``python -m benchmarks.soak --patients N --minutes M [--json soak.json]``

It starts a real mosquitto (free port, temp dir, the deployed persistence setting) and a real influxd
1.6.7 with the write-forwarding adapter (both from :mod:`tests.servers`, as the integration tests start
them), runs ``cramp-detector serve`` as a subprocess against them, and one publisher process with one MQTT
client per patient. Each patient is a simulated wearable (2 EMG channels at 1000 Hz, 3 ACC axes at 50 Hz,
0.25 s frames, events planted at 3x the usual density), pre-rendered so the publisher is never the
bottleneck, and published in **real time**: a frame leaves when its last sample would have been sampled,
stamped with the wall clock, QoS 1, each tracked to its PUBACK.

Measured:

* **latency** from sample to stored event: the time an event first appears in InfluxDB (polled every
  ``--poll-s``, so it is late by up to that much) minus the wall time of the event's offset (its last
  sample). An event cannot be stored before the segmenter has seen it end, which takes a few seconds
  of hysteresis by design;
* **detector RSS** every 10 s (``/proc/<pid>/status``);
* **backlog**: the largest ``lag_s`` of the detector's heartbeats (wall clock minus the device time of
  the newest data it has processed), every 10 s;
* **frames**: published, acknowledged (PUBACK), and the seconds of data the detector processed (its
  1 Hz ``cramp_summary`` points with ``data_received = 1``) against the seconds published. After the
  publishers stop, the harness waits up to ``--drain-s`` for the detector to catch up; what is still
  missing then is backlog or loss, and the report says which it cannot tell apart;
* **events** stored.

Writes ``--json`` and prints a table. The detector's own log is kept in the temp dir only while running.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import os
import queue
import signal
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from crampwatch import wire
from crampwatch.simulate import Night, SimParams
from crampwatch.topics import StreamTopic, confirm_topic
from tests.servers import InfluxServer, InfluxV2WriteAdapter, MosquittoServer

DB = "soak"
PREFIX = "cramp/v1"
FRAME_S = 0.25
DISTINCT_NIGHTS = 4  # patients share pre-rendered nights (their frames are re-stamped), to bound memory
_T0 = struct.Struct("<q")  # wire v1: device time of the first sample at offset 16
_T0_OFFSET = 16
SAMPLE_EVERY_S = 10.0


def _render(minutes: float, night: int) -> list[tuple[int, str, bytes]]:
    """(due offset ns, stream kind, wire frame stamped from 0) of one simulated night, in device order."""
    from collector.sources import SimulatedSource  # what a collector sends, frame for frame

    params = SimParams(emg_rate_hz=1000.0, acc_rate_hz=50.0)
    source = SimulatedSource(Night(minutes * 60, 100 + night, params, event_density=3.0), frame_s=FRAME_S)
    return [(f.t0_ns + round(f.n_samples / f.rate_hz * 1e9), f.kind.value, wire.encode(f)) for f in source.frames()]


def _stamped(frame: bytes, start_ns: int) -> bytes:
    body = bytearray(frame[:-4])
    _T0.pack_into(body, _T0_OFFSET, _T0.unpack_from(body, _T0_OFFSET)[0] + start_ns)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def _publish(
    mqtt_url: str,
    nights: list[list[tuple[int, str, bytes]]],
    patients: int,
    start_ns: int,
    out: Any,
    stop: Any,
) -> None:
    """The publisher process: every patient's frames at their wall-clock due time, QoS 1.

    Each patient's client also listens on its confirm topic, as a collector in ``--confirm detector``
    mode does, and counts the frames the detector confirmed journalled (the newest confirmed seq + 1 per
    stream: seqs run from 0 without gaps). Nothing is killed here, so nothing needs resending; a frame
    never confirmed is a lost frame.
    """
    from crampwatch.mqtt import connect, make_client

    clients = []
    acked = [0] * patients
    confirmed: list[dict[str, int]] = [{} for _ in range(patients)]
    for p in range(patients):
        client = make_client(mqtt_url, f"soak-collector-{p}")

        def on_publish(c: object, u: object, mid: int, rc: object, props: object, i: int = p) -> None:
            acked[i] += 1

        def on_message(c: object, u: object, msg: Any, i: int = p) -> None:
            for kind, seq in wire.decode_confirm(msg.payload).items():
                confirmed[i][kind.value] = max(seq + 1, confirmed[i].get(kind.value, 0))

        def on_connect(c: Any, u: object, f: object, why: object, props: object, i: int = p) -> None:
            c.subscribe(confirm_topic(PREFIX, f"p{i:03d}", "soak"), qos=1)

        client.on_publish = on_publish
        client.on_message = on_message
        client.on_connect = on_connect
        connect(client)
        clients.append(client)
    # Patients start a little apart within one frame, as real sensors would, not all on the same tick.
    stagger_ns = [round(FRAME_S * 1e9 * p / patients) for p in range(patients)]
    heap = [(start_ns + stagger_ns[p] + nights[p % len(nights)][0][0], p, 0) for p in range(patients)]
    heapq.heapify(heap)
    published = [0] * patients
    late_ns = 0
    while heap:
        due, p, i = heapq.heappop(heap)
        wait = (due - time.time_ns()) / 1e9
        if wait > 0:
            time.sleep(wait)
        else:
            late_ns = max(late_ns, -int(wait * 1e9))
        frames = nights[p % len(nights)]
        _, kind, frame = frames[i]
        topic = StreamTopic(f"p{p:03d}", "soak", _kind(kind)).render(PREFIX)
        clients[p].publish(topic, _stamped(frame, start_ns + stagger_ns[p]), qos=1)
        published[p] += 1
        if i + 1 < len(frames):
            heapq.heappush(heap, (start_ns + stagger_ns[p] + frames[i + 1][0], p, i + 1))
    last_publish = time.time()
    deadline = time.monotonic() + 60
    while sum(acked) < sum(published) and time.monotonic() < deadline:
        time.sleep(0.1)
    acks_s = time.time() - last_publish
    out.put(
        {
            "published": sum(published),
            "acked": sum(acked),
            "publisher_max_late_s": late_ns / 1e9,
            "last_publish": last_publish,
            "acks_after_last_publish_s": round(acks_s, 1),
        }
    )
    total = sum(published)
    while sum(sum(c.values()) for c in confirmed) < total and not stop.wait(0.2):
        pass
    out.put({"confirmed": sum(sum(c.values()) for c in confirmed), "confirmed_at": time.time()})
    for client in clients:
        client.loop_stop()
        client.disconnect()


def _kind(value: str) -> Any:
    from crampwatch.frames import StreamKind

    return StreamKind(value)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


class _Store:
    """What the detector has written to InfluxDB so far."""

    def __init__(self, influx: InfluxServer) -> None:
        self.influx = influx
        self.first_seen: dict[tuple[str, int], tuple[float, float]] = {}  # (patient, onset ms) -> (seen, offset)

    def poll_events(self) -> None:
        now = time.time()
        for row in self.influx.query('SELECT "duration_s" FROM "cramp_events" GROUP BY "patient"', db=DB):
            key = (str(row["patient"]), int(row["time"]))
            if key not in self.first_seen:
                self.first_seen[key] = (now, row["time"] / 1000 + float(row["duration_s"]))

    def processed_s(self) -> int:
        rows = self.influx.query('SELECT sum("data_received") FROM "cramp_summary"', db=DB)
        return int(rows[0]["sum"]) if rows else 0

    def max_lag_s(self) -> float:
        rows = self.influx.query(
            'SELECT last("lag_s") FROM "cramp_heartbeat" WHERE time > now() - 30s GROUP BY "patient"', db=DB
        )
        return max((float(r["last"]) for r in rows), default=float("nan"))

    def rejected(self) -> int:
        rows = self.influx.query('SELECT max("rejected_frames") FROM "cramp_heartbeat" GROUP BY "patient"', db=DB)
        return sum(int(r["max"]) for r in rows)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run(
    patients: int, minutes: float, *, drain_s: float, poll_s: float, workdir: Path, confirm: str = "detector"
) -> dict[str, Any]:
    print(f"rendering {min(patients, DISTINCT_NIGHTS)} night(s) of {minutes:g} min ...", flush=True)
    nights = [_render(minutes, n) for n in range(min(patients, DISTINCT_NIGHTS))]
    # Detector confirmation: the broker saves only every 60 s (no per-change save); the publishers count
    # what the detector confirmed. Broker confirmation: the broker saves on every change, as before.
    broker = MosquittoServer(workdir / "mosquitto", per_change_save=confirm == "broker")
    influx = InfluxServer(workdir / "influxd")
    broker.start()
    influx.start()
    influx.create_database(DB)
    adapter = InfluxV2WriteAdapter(influx.url)
    log_path = workdir / "detector.log"
    cmd = [sys.executable, "-m", "detector", "serve", "--mqtt-url", broker.url, "--influx-url", adapter.url]
    cmd += ["--influx-token", "x", "--influx-bucket", f"{DB}/autogen", "--client-id", "soak-detector"]
    cmd += ["--dead-letter-file", str(workdir / "dead-letter.jsonl"), "--max-devices", str(max(patients, 1) + 10)]
    store = _Store(influx)
    load_at_start = list(os.getloadavg())
    cpu: dict[str, float] = {}
    rss: list[tuple[float, float]] = []
    lag: list[tuple[float, float]] = []
    with log_path.open("wb") as log:
        detector = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_for(log_path, "connected to MQTT broker", detector, 60)
        time.sleep(2.0)  # the SUBACK follows the CONNACK; frames before it would be dropped
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        stop = ctx.Event()
        start_ns = time.time_ns() + 3_000_000_000  # the publisher's clients connect meanwhile
        publisher = ctx.Process(target=_publish, args=(broker.url, nights, patients, start_ns, out, stop))
        publisher.start()
        t_start = start_ns / 1e9
        published_s = patients * minutes * 60
        next_sample = t_start
        t_publish_end: float | None = None
        backlog_at_end = float("nan")
        pub_result: dict[str, Any] = {}
        last_progress, last_processed = time.time(), -1
        while True:
            time.sleep(poll_s)
            now = time.time()
            store.poll_events()
            if now >= next_sample:
                rss.append((round(now - t_start, 1), round(_rss_mb(detector.pid), 1)))
                lag.append((round(now - t_start, 1), store.max_lag_s()))
                next_sample += SAMPLE_EVERY_S
                print(
                    f"  t={now - t_start:6.0f} s  detector RSS {rss[-1][1]:6.0f} MB  backlog {lag[-1][1]:6.1f} s  "
                    f"events {len(store.first_seen)}",
                    flush=True,
                )
            if detector.poll() is not None:
                raise RuntimeError(f"the detector exited with code {detector.returncode}; see {log_path}")
            if t_publish_end is None:
                if not publisher.is_alive() or not out.empty():
                    pub_result = out.get(timeout=120)
                    t_publish_end = float(pub_result["last_publish"])
                    # the backlog sample closest to the last publish
                    if lag:
                        backlog_at_end = min(lag, key=lambda s: abs(s[0] - (t_publish_end - t_start)))[1]
                continue
            processed = store.processed_s()
            if processed != last_processed:
                last_progress, last_processed = now, processed
            if processed >= published_s or now - t_publish_end > drain_s or now - last_progress > 30:
                break
        t_drained = time.time()
        stop.set()
        try:
            pub_result.update(out.get(timeout=30))
        except queue.Empty:  # the publisher died: its confirmations are unknown
            pub_result["confirmed"] = None
        publisher.join(10)
        cpu = {"detector": _cpu_s(detector.pid), "broker": _cpu_s(broker.pid)}
        store.poll_events()
        processed = store.processed_s()
        rejected = store.rejected()
        detector.send_signal(signal.SIGINT)
        try:
            detector.wait(30)
        except subprocess.TimeoutExpired:
            detector.kill()
    finally:
        if detector.poll() is None:
            detector.kill()
        adapter.stop()
        influx.kill()
        broker.kill()
    latencies = sorted(seen - offset for seen, offset in store.first_seen.values())
    return {
        "patients": patients,
        "minutes": minutes,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "load_avg_at_start": load_at_start},
        "confirm": confirm,
        "frames_published": pub_result.get("published"),
        "frames_acked": pub_result.get("acked"),
        "frames_confirmed": pub_result.get("confirmed"),
        "frames_lost": (pub_result["published"] - pub_result["confirmed"])
        if confirm == "detector" and pub_result.get("confirmed") is not None
        else None,
        "cpu_s": cpu,
        "publisher_max_late_s": pub_result.get("publisher_max_late_s"),
        "acks_after_last_publish_s": pub_result.get("acks_after_last_publish_s"),
        "data_seconds_published": published_s,
        "data_seconds_processed": processed,
        "data_seconds_missing": published_s - processed,
        "frames_rejected": rejected,
        "backlog_s_when_publishing_ended": backlog_at_end,
        "drain_s": round(t_drained - (t_publish_end or t_drained), 1),
        "events_stored": len(store.first_seen),
        "latency_s": {
            "p50": round(_percentile(latencies, 50), 2),
            "p99": round(_percentile(latencies, 99), 2),
            "max": round(latencies[-1], 2) if latencies else None,
            "poll_resolution_s": poll_s,
        },
        "detector_rss_mb": rss,
        "backlog_s": lag,
    }


def _wait_for(log_path: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log_path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"the detector did not log {text!r}:\n{log_path.read_text(errors='replace')[-3000:]}")


def _table(r: dict[str, Any]) -> str:
    rss = [mb for _, mb in r["detector_rss_mb"]]
    lat = r["latency_s"]
    rows = [
        ("patients x minutes", f"{r['patients']} x {r['minutes']:g}"),
        (
            "confirmation / broker save",
            "detector / every 60 s" if r["confirm"] == "detector" else "broker / on changes",
        ),
        ("frames published / acked", f"{r['frames_published']} / {r['frames_acked']}"),
        ("frames confirmed by the detector / lost", f"{r['frames_confirmed']} / {r['frames_lost']}"),
        ("publisher late by at most", f"{r['publisher_max_late_s']:.2f} s"),
        ("last PUBACK after the last publish", f"{r['acks_after_last_publish_s']} s"),
        ("data seconds published / processed", f"{r['data_seconds_published']:.0f} / {r['data_seconds_processed']}"),
        ("frames rejected by the detector", str(r["frames_rejected"])),
        ("backlog when publishing ended", f"{r['backlog_s_when_publishing_ended']:.1f} s"),
        ("drain time", f"{r['drain_s']:.0f} s"),
        ("events stored", str(r["events_stored"])),
        ("latency offset -> stored p50 / p99 / max", f"{lat['p50']} / {lat['p99']} / {lat['max']} s"),
        ("CPU s detector / broker", " / ".join(f"{r['cpu_s'].get(k, 0):.0f}" for k in ("detector", "broker"))),
        ("load average at start (1/5/15 min)", " / ".join(f"{x:.2f}" for x in r["machine"]["load_avg_at_start"])),
        ("detector RSS first / max / last", f"{rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} MB" if rss else "-"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=20, help="simulated patients (default 20)")
    parser.add_argument("--minutes", type=float, default=3.0, help="real-time minutes of publishing (default 3)")
    parser.add_argument(
        "--drain-s", type=float, default=300.0, help="most seconds to wait for the detector to catch up"
    )
    parser.add_argument("--poll-s", type=float, default=1.0, help="InfluxDB poll interval (latency resolution)")
    parser.add_argument("--json", type=Path, default=Path("soak.json"), help="where to write the results")
    parser.add_argument(
        "--confirm",
        choices=("detector", "broker"),
        default="detector",
        help="detector (default): broker without per-change save, frames count once the detector confirms "
        "them; broker: the broker saves on every change (the old set-up)",
    )
    args = parser.parse_args(argv)
    if args.patients < 1 or not args.minutes > 0:
        parser.error("--patients must be at least 1 and --minutes positive")
    with TemporaryDirectory(prefix="cramp-soak-") as tmp:
        result = run(
            args.patients,
            args.minutes,
            drain_s=args.drain_s,
            poll_s=args.poll_s,
            workdir=Path(tmp),
            confirm=args.confirm,
        )
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result))
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
