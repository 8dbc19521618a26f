"""``cramp-collector run --device PROFILE[:ADDRESS] --patient P``: stream a BLE wearable all night.

    cramp-collector run --device ganglion --patient p-017
    cramp-collector run --device crampwatch:C4:DE:E2:11:22:33 --patient p-017 --mqtt-url mqtt://pi:1883

What it sets up: a durable spool (frames survive broker outages and collector restarts), an MQTT
client that connects in the background and keeps retrying (the collector starts even if the broker is
down), a retained status topic with a last will, and the BLE runner that scans, connects, streams and
reconnects until stopped. SIGTERM / Ctrl-C stop it cleanly *without* ending the night (a restarted
collector continues the same streams); ``--duration`` ends the night after that many seconds and marks the
streams' end, so the detector finishes the night.

The device id in the topics defaults to the profile name (``--device-id`` to choose, e.g. to put a Polar
accelerometer and an EMG device on the same detector device).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from crampwatch import settings as settings_mod
from crampwatch.cli import positive_float
from crampwatch.errors import BrokerError, ConfigError
from crampwatch.mqtt import BrokerAddress, make_client
from crampwatch.topics import check_id

from ..ble import get_profile
from ..ble.runner import Backoff, BleRunner
from ..config import CollectorSettings
from ..publisher import FramePublisher
from ..spool import Spool, default_state_dir
from ..telemetry import StatusReporter

log = logging.getLogger(__name__)

NAME = "run"
HELP = "stream a BLE wearable to MQTT all night (reconnects, spools, reports status)"

#: Frames in paho's hands at once (the publisher is created before connecting, so paho can take this many).
WINDOW = 100
FLUSH_ON_STOP_S = 10.0


def _add_settings_arguments(parser: argparse.ArgumentParser, *, exclude: tuple[str, ...]) -> None:
    """settings.add_arguments without some fields (here: --device, which names the wearable in this command).

    TODO(lead): give crampwatch.settings.add_arguments an ``exclude`` parameter and call it instead.
    """
    group = parser.add_argument_group("settings (flag > environment variable > --config file > default)")
    group.add_argument("--config", type=Path, metavar="FILE", help="TOML file with any of these settings")
    for name, field in CollectorSettings.model_fields.items():
        if name in exclude:
            continue
        default = field.default if field.default is not None else "unset"
        group.add_argument(
            CollectorSettings.flag(name),
            dest=name,
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{field.description} [env {CollectorSettings.env_var(name)}; default: {default}]",
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The settings' --device (the device id in the topics) is --device-id here: --device names the wearable.
    _add_settings_arguments(parser, exclude=("device",))
    parser.add_argument(
        "--device",
        dest="ble_device",
        required=True,
        metavar="PROFILE[:ADDRESS]",
        help="which wearable: a profile from 'cramp-collector profiles', optionally with its Bluetooth "
        "address from 'cramp-collector scan' (default: the first one found)",
    )
    parser.add_argument(
        "--device-id",
        dest="device",
        metavar="ID",
        help="device id in the MQTT topics [env CRAMP_DEVICE; default: the profile name]",
    )
    parser.add_argument("--duration", type=positive_float, metavar="SECONDS", help="end the night after this long")
    parser.add_argument("--frame-s", type=positive_float, default=0.25, help="seconds of samples per MQTT frame (0.25)")


def parse_device(spec: str) -> tuple[str, str | None]:
    """``"ganglion"`` -> ("ganglion", None); ``"ganglion:C0:11:22:33:44:55"`` -> (name, address)."""
    name, _, address = spec.partition(":")
    if address and len(address.split(":")) != 6 and "-" not in address:
        raise ConfigError(
            f"--device {spec!r}: the address must look like C0:11:22:33:44:55 (see 'cramp-collector scan')"
        )
    return name.strip().lower(), (address.strip().upper() or None)


def run(args: argparse.Namespace, *, runner_cls: type[BleRunner] = BleRunner) -> int:
    """Stream the device. ``runner_cls`` is the seam tests use to put the runner on a virtual radio."""
    cfg = settings_mod.load(CollectorSettings, args)
    name, address = parse_device(args.ble_device)
    profile = get_profile(name)
    if "device" not in cfg.model_fields_set:
        cfg = cfg.model_copy(update={"device": check_id(profile.name, "device id")})
    spool_path = cfg.spool_path or default_state_dir() / f"spool-{cfg.patient}-{cfg.device}-{profile.name}.db"
    client_id = cfg.client_id or f"cramp-collector-{cfg.patient}-{cfg.device}-{profile.name}"
    client = make_client(cfg.mqtt_url, client_id)
    spool = Spool(spool_path, max_bytes=round(cfg.spool_max_mb * 1e6), sync=cfg.spool_sync)
    publisher = FramePublisher(client, cfg.topic_prefix, cfg.patient, cfg.device, spool=spool, window=WINDOW)

    def on_event(event: str) -> None:
        if event in ("connected", "backoff"):  # link changes show on the status topic at once
            status.publish()

    runner = runner_cls(
        profile,
        publisher,
        address=address,
        frame_s=args.frame_s,
        silence_s=cfg.ble_silence_s or None,
        backoff=Backoff(max_s=cfg.ble_backoff_max_s),
        scan_timeout_s=cfg.ble_scan_timeout_s,
        on_event=on_event,
    )
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
    _connect_in_background(client)
    try:
        asyncio.run(_main(runner, status, cfg.status_interval_s, args.duration))
    finally:
        try:
            publisher.flush(FLUSH_ON_STOP_S)
        except BrokerError as err:
            log.warning("%s", err)
        status.publish(collector="stopped")
        publisher.close()
        spool.close()
        client.loop_stop()
        client.disconnect()
    s = runner.stats
    log.info(
        "stopped: %d connection(s), %s samples, %s frames, device-side losses %s",
        s.connections,
        {k.value: v for k, v in s.samples.items()},
        {k.value: v for k, v in s.frames.items()},
        {k.value: v for k, v in s.device_lost_samples.items()} or "none",
    )
    return 0


def _connect_in_background(client: mqtt.Client) -> None:
    """Like crampwatch.mqtt.connect, but never blocks or fails: paho keeps retrying while the spool fills."""
    data = client.user_data_get()
    address: BrokerAddress = data["address"]
    props = Properties(PacketTypes.CONNECT)  # paho: unannotated
    props.SessionExpiryInterval = int(data["session_expiry_s"])
    client.connect_async(address.host, address.port, keepalive=30, clean_start=False, properties=props)
    client.loop_start()
    log.info("connecting to MQTT broker %s in the background (frames are spooled meanwhile)", address)


async def _main(runner: BleRunner, status: StatusReporter, interval_s: float, duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def report() -> None:
        while not stop.is_set():
            status.publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    reporter = asyncio.create_task(report())
    try:
        await runner.run(stop, duration_s=duration_s)
    finally:
        stop.set()
        await reporter
