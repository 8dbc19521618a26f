"""``cramp-collector run --profile PROFILE[:ADDRESS] --patient P``: stream a BLE wearable all night.

    cramp-collector run --profile ganglion --patient p-017
    cramp-collector run --profile crampwatch:C4:DE:E2:11:22:33 --patient p-017 --mqtt-url mqtt://pi:1883

What it sets up: a durable spool (frames survive broker outages and collector restarts), an MQTT
client that connects in the background and keeps retrying (the collector starts even if the broker is
down), a retained status topic with a last will, and the BLE source (:mod:`collector.ble.source`) that
scans, connects, streams and reconnects until stopped, run by the collector's one source loop
(:func:`collector.relay.relay`). SIGTERM / Ctrl-C stop it cleanly *without* ending the night (a restarted
collector continues the same streams); ``--duration`` ends the night after that many seconds and marks
the streams' end, so the detector finishes the night.

The device id in the topics (``--device``, as in every command) defaults to the profile name; give two
wearables the same ``--device`` to put, e.g., a Polar accelerometer and an EMG device on the same
detector device.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from crampwatch.cli import positive_float
from crampwatch.errors import ConfigError

if TYPE_CHECKING:
    # The rest is imported when the command runs: `cramp-collector --help` must not load bleak and paho.
    from ..ble.runner import BleRunner

log = logging.getLogger(__name__)

NAME = "run"
HELP = "stream a BLE wearable to MQTT all night (reconnects, spools, reports status)"

#: Frames in paho's hands at once (the publisher is created before connecting, so paho can take this many).
WINDOW = 100
FLUSH_ON_STOP_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import CollectorSettings

    # The settings ``run`` shows; ``--device`` is added by hand (its default here is the profile name).
    settings = tuple(name for name in CollectorSettings.model_fields if name != "device")
    parser.add_argument(
        "--profile",
        required=True,
        metavar="PROFILE[:ADDRESS]",
        help="which wearable: a profile from 'cramp-collector profiles', optionally with its Bluetooth "
        "address from 'cramp-collector scan' (default: the first one found)",
    )
    parser.add_argument("--duration", type=positive_float, metavar="SECONDS", help="end the night after this long")
    parser.add_argument("--frame-s", type=positive_float, default=0.25, help="seconds of samples per MQTT frame (0.25)")
    settings_mod.add_arguments(parser, CollectorSettings, fields=settings)
    parser.add_argument(
        "--device",
        metavar="ID",
        help="device id in the MQTT topics, unique per patient [env CRAMP_DEVICE; default: the profile name]",
    )


def parse_profile(spec: str) -> tuple[str, str | None]:
    """``"ganglion"`` -> ("ganglion", None); ``"ganglion:C0:11:22:33:44:55"`` -> (name, address)."""
    name, _, address = spec.partition(":")
    if address and len(address.split(":")) != 6 and "-" not in address:
        raise ConfigError(
            f"--profile {spec!r}: the address must look like C0:11:22:33:44:55 (see 'cramp-collector scan')"
        )
    return name.strip().lower(), (address.strip().upper() or None)


def run(args: argparse.Namespace, *, runner_cls: type[BleRunner] | None = None) -> int:
    """Stream the device. ``runner_cls`` is the seam tests use to put the runner on a virtual radio."""
    from crampwatch import settings as settings_mod
    from crampwatch.mqtt import make_client
    from crampwatch.settings import default_state_dir
    from crampwatch.topics import check_id

    from ..ble import get_profile
    from ..ble.runner import Backoff, BleRunner
    from ..ble.source import BleSource
    from ..config import CollectorSettings
    from ..publisher import FramePublisher
    from ..relay import Feed, relay
    from ..spool import Spool
    from ..telemetry import StatusReporter

    runner_type = runner_cls or BleRunner
    cfg = settings_mod.load(CollectorSettings, args)
    name, address = parse_profile(args.profile)
    profile = get_profile(name)
    if "device" not in cfg.model_fields_set:
        cfg = cfg.model_copy(update={"device": check_id(profile.name, "device id")})
    spool_path = cfg.spool_path or default_state_dir() / f"spool-{cfg.patient}-{cfg.device}-{profile.name}.db"
    client_id = cfg.client_id or f"cramp-collector-{cfg.patient}-{cfg.device}-{profile.name}"
    client = make_client(cfg.mqtt_url, client_id, access=cfg.mqtt_access)
    spool = Spool(spool_path, max_bytes=round(cfg.spool_max_mb * 1e6), sync=cfg.spool_sync)
    publisher = FramePublisher(
        client,
        cfg.device_prefix,
        cfg.patient,
        cfg.device,
        spool=spool,
        window=WINDOW,
        confirm=cfg.confirm,
        confirm_window=cfg.confirm_window,
    )

    def on_event(event: str) -> None:
        if event in ("connected", "backoff"):  # link changes show on the status topic at once
            status.publish()

    source = BleSource(
        lambda sink: runner_type(
            profile,
            sink,
            address=address,
            frame_s=args.frame_s,
            silence_s=cfg.ble_silence_s or None,
            backoff=Backoff(max_s=cfg.ble_backoff_max_s),
            scan_timeout_s=cfg.ble_scan_timeout_s,
            on_event=on_event,
        ),
        next_seq=publisher.next_seq,
        duration_s=args.duration,
    )
    runner = source.runner
    status = StatusReporter(publisher, profile.name, runner.stats, {s.kind: s.rate_hz for s in profile.streams})
    status.set_last_will(client)
    log.info(
        "collecting %s%s for patient %s as device %s; spool %s",
        profile.title,
        f" at {address}" if address else "",
        cfg.patient,
        cfg.device,
        spool_path,
    )
    reporting = _Every(cfg.status_interval_s, status.publish)

    def final_status() -> None:
        reporting.stop()
        status.publish(collector="stopped")

    try:
        reporting.start()
        relay(
            [Feed(source, publisher)],
            flush_timeout_s=FLUSH_ON_STOP_S,
            store_and_forward=True,
            before_close=final_status,
        )
    finally:
        reporting.stop()
        spool.close()
    s = runner.stats
    log.info(
        "stopped: %d connection(s), %s samples, %s frames, device-side losses %s",
        s.connections,
        {k.value: v for k, v in s.samples.items()},
        {k.value: v for k, v in s.frames.items()},
        {k.value: v for k, v in s.device_lost_samples.items()} or "none",
    )
    return 0


class _Every:
    """Calls ``action`` now and every ``interval_s`` in a thread, until :meth:`stop` (the status heartbeat)."""

    def __init__(self, interval_s: float, action: Callable[[], object]) -> None:
        self.interval_s = interval_s
        self.action = action
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.action()
            self._stopped.wait(self.interval_s)
