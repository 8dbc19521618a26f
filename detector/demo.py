"""``cramp-detector demo``: a simulated night through the whole pipeline, events printed beside the truth.

simulator -> cramp-collector simulate (a separate process) -> MQTT broker -> detector service -> sinks.
With no broker configured it starts the installed mosquitto on a free port in a temp dir; with no InfluxDB
configured, events go to a JSON-lines file. With CRAMP_MQTT_URL / CRAMP_INFLUX_URL set, it uses those.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crampwatch.errors import ConfigError
from crampwatch.recording import read_annotations

from .config import DetectorSettings
from .events import Event
from .model import load_model
from .scoring import format_table, score
from .service import DetectorService

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """The machine's mosquitto on a free loopback port, with its files in a temp dir."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            raise ConfigError(
                "no MQTT broker configured and mosquitto is not installed: install it "
                "(apt-get install mosquitto) or set CRAMP_MQTT_URL=mqtt://host:1883"
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "max_queued_messages 1000000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise ConfigError(f"mosquitto did not start; see {workdir / 'mosquitto.log'}")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_demo(
    settings: DetectorSettings,
    *,
    duration_s: float,
    speed: str,
    seed: int,
    density: float,
    mqtt_configured: bool,
    influx_configured: bool,
    progress: bool = True,
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="crampwatch-demo-"))
    broker = None
    if not mqtt_configured:
        broker = EmbeddedBroker(workdir)
        settings = settings.model_copy(update={"mqtt_url": broker.url})
        print(f"MQTT: no broker configured, started mosquitto at {broker.url}")
    else:
        print(f"MQTT: using {settings.mqtt_url.split('@')[-1]}")
    if not influx_configured:
        settings = settings.model_copy(update={"events_file": workdir / "events.jsonl"})
        print(f"InfluxDB: none configured, events go to {settings.events_file}")
    else:
        print(f"InfluxDB: writing to {settings.influx_url} bucket {settings.influx_bucket}")
    model = load_model(settings.model)
    patient, device = "demo-patient", f"sim{seed}"
    # Its own session and state, in the temp dir: a demo must not leave a journal in the user's state dir.
    settings = settings.model_copy(
        update={"client_id": f"cramp-detector-demo-{os.getpid()}", "state_dir": workdir / "state"}
    )
    service = DetectorService(settings, model)
    worker = service.start()
    truth_file = workdir / "truth.csv"
    cmd = [
        sys.executable,
        "-m",
        "collector",
        "simulate",
        "--duration",
        str(duration_s),
        "--speed",
        speed,
        "--seed",
        str(seed),
        "--density",
        str(density),
        "--truth",
        str(truth_file),
        "--mqtt-url",
        settings.mqtt_url,
        "--topic-prefix",
        settings.topic_prefix,
        "--patient",
        patient,
        "--device",
        device,
        "--log-level",
        "WARNING",
    ]
    if not progress:
        cmd.append("--no-progress")
    started = time.monotonic()
    try:
        rc = subprocess.call(cmd)
        if rc != 0:
            print(f"the simulated wearable failed (exit {rc})", file=sys.stderr)
            return rc
        if not service.wait_finished({(patient, device)}, timeout_s=max(120.0, duration_s)):
            print("the detector did not finish the night in time", file=sys.stderr)
            return 1
    finally:
        service.stop()
        worker.join(10)
        service.close()
        if broker:
            broker.close()
    elapsed = time.monotonic() - started
    events = [e for e in service.events_log if e.type in ("cramp", "spasm")]
    plms = [e for e in service.events_log if e.type == "plm"]
    truth = [a for a in read_annotations(truth_file) if a.type in ("cramp", "spasm")]
    print(f"\n{duration_s / 60:.0f}-minute simulated night (seed {seed}) processed in {elapsed:.1f} s\n")
    print(f"{'truth':<40}| detected")
    rows = sorted([(a.onset_s, "t", a) for a in truth] + [(e.onset_s, "d", e) for e in events], key=lambda r: r[0])
    for _, _, item in rows:
        text = f"{item.type:<7}{item.onset_s:8.1f} - {item.offset_s:8.1f} s"
        if isinstance(item, Event):
            print(f"{'':<40}| {text}  conf {item.confidence:.2f}  peak {item.peak_uv:.0f} uV")
        else:
            print(f"{text} {item.subtype:<11}|")
    print("\n" + format_table(score(truth, events, duration_s / 3600)))
    n_plm_true = sum(a.type == "plm" for a in read_annotations(truth_file))
    print(
        f"\nperiodic limb movements (AASM rules): {len(plms)} found, {n_plm_true} simulated "
        f"(PLM index {len(plms) / (duration_s / 3600):.0f}/h)"
    )
    print(f"frames rejected: {service.stats.rejected_frames}; events detected: {service.stats.events}")
    return report_writes(service)


def report_writes(service: DetectorService) -> int:
    """Print what each sink actually wrote (not what was detected); 1 if anything was not written."""
    failed = False
    for sink in service.sinks.sinks:
        stats = service.sinks.stats[sink.name]
        queued_events, queued_summaries = service.sinks.pending(sink.name)
        line = f"{sink.name}: {stats.written_events} events and {stats.written_summaries} summaries written"
        if stats.written_announcements:
            line += f" (and {stats.written_announcements} open/cancelled announcements of live events)"
        problems = []
        if stats.dead_lettered_events or stats.dead_lettered_summaries:
            where = service.sinks.dead_letter.path if service.sinks.dead_letter else "nowhere"
            problems.append(
                f"{stats.dead_lettered_events} events and {stats.dead_lettered_summaries} summaries refused "
                f"(dead letter: {where})"
            )
        if queued_events or queued_summaries:
            problems.append(
                f"{queued_events} events and {queued_summaries} summaries not written yet ({sink.name} down)"
            )
        if stats.written_events < service.stats.events:
            problems.append(f"{service.stats.events - stats.written_events} detected events missing")
        print(line + ("; " + "; ".join(problems) if problems else ""))
        failed = failed or bool(problems)
    if failed:
        print("some results were not written: see above and the log", file=sys.stderr)
    return 1 if failed else 0
