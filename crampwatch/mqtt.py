"""paho-mqtt client set-up shared by both services (MQTT v5, persistent sessions, reconnects).

paho is configured here once: callback API v2, MQTT v5, ``clean_start=False`` with a session expiry so
the broker keeps QoS 1 messages for us while we are away, automatic reconnect with capped backoff, TLS
for ``mqtts://``. Connection failures are translated into :class:`BrokerError` with the fix.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .errors import BrokerError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:  # never print the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def make_client(url: str, client_id: str, *, session_expiry_s: int = 3600, manual_ack: bool = False) -> mqtt.Client:
    """A paho client with a persistent session; call :func:`connect` next.

    ``manual_ack``: received QoS 1 messages are acknowledged only by ``client.ack(mid, qos)``, so a receiver
    can acknowledge a message once what it did with it is durable (the broker redelivers the rest).
    """
    address = BrokerAddress.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_queued_messages_set(0)  # unlimited: we track every QoS 1 message until PUBACK
    client.user_data_set({"address": address, "session_expiry_s": session_expiry_s})
    return client


def connect(client: mqtt.Client, *, timeout_s: float = 10.0) -> None:
    """Connect (persistent session), start paho's network thread, and wait for CONNACK."""
    data = client.user_data_get()
    address: BrokerAddress = data["address"]
    connected = threading.Event()
    failure: list[str] = []
    previous: Callable[..., None] | None = client.on_connect

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            failure.append(str(reason))
        connected.set()
        if previous is not None:
            previous(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = int(data["session_expiry_s"])
    try:
        client.connect(address.host, address.port, keepalive=30, clean_start=False, properties=props)
    except (OSError, socket.gaierror, ssl.SSLError) as err:
        raise BrokerError(
            f"cannot reach the MQTT broker at {address}: {err}. Is it running? "
            "Set --mqtt-url / CRAMP_MQTT_URL to a reachable broker."
        ) from None
    client.loop_start()
    if not connected.wait(timeout_s):
        client.loop_stop()
        raise BrokerError(f"no answer (CONNACK) from the MQTT broker at {address} within {timeout_s:.0f} s")
    client.on_connect = previous
    if failure:
        client.loop_stop()
        raise BrokerError(
            f"the MQTT broker at {address} refused the connection: {failure[0]}. "
            "Check the user name and password in the URL (mqtt://user:pass@host:port)."
        )
    log.info("connected to MQTT broker %s as %s", address, client._client_id.decode())


def connect_in_background(client: mqtt.Client) -> None:
    """Like :func:`connect`, but never blocks or fails: paho keeps retrying (a spooling collector starts
    while the broker is down, and sends its backlog once it is up)."""
    data = client.user_data_get()
    address: BrokerAddress = data["address"]
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = int(data["session_expiry_s"])
    client.connect_async(address.host, address.port, keepalive=30, clean_start=False, properties=props)
    client.loop_start()
    log.info("connecting to MQTT broker %s in the background (frames are spooled meanwhile)", address)
