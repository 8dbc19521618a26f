"""paho-mqtt client set-up shared by both services (MQTT v5, persistent sessions, reconnects).

paho is configured here once: callback API v2, MQTT v5, ``clean_start=False`` with a session expiry so
the broker keeps QoS 1 messages for us while we are away, automatic reconnect with capped backoff, TLS
for ``mqtts://`` (optionally with our own CA and a client certificate: :class:`MqttAccess`), and the
password from the URL or from a file. Connection failures are translated into :class:`BrokerError`
with the fix.

MQTT v5 on purpose: mosquitto answers a publish its ACL denies with PUBACK reason code 0x87 "Not
authorized" under v5, but with a plain PUBACK under v3.1.1, so a denied frame would vanish silently
(shared/reference/infrastructure.md section 3). The publisher counts and logs such refusals.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .errors import BrokerError, ConfigError

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


@dataclass(frozen=True, slots=True)
class MqttAccess:
    """How a client proves who it is and checks the broker, beyond the URL (the ``mqtt_*_file`` settings).

    ``ca_file``: the CA that signed the broker's certificate (default: the system's CAs);
    ``cert_file``/``key_file``: a client certificate for brokers with ``require_certificate true``;
    ``password_file``: the password, read from a file instead of the URL (first line, no newline).
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    password_file: Path | None = None


def with_username(url: str, username: str) -> str:
    """``url`` logging in as ``username`` instead (its password, if any, kept); ``/`` in the name becomes %2F.

    A sharded detector's shard k logs in as its own account on brokers where the account is the client id.
    """
    parts = urlsplit(url)
    password = f":{quote(unquote(parts.password), safe='')}" if parts.password else ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(username, safe='')}{password}@{host}"))


def read_password_file(path: Path) -> str:
    """The password in ``path``: its first line without the line end. Raises ConfigError naming the fix."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"mqtt_password_file {path}: cannot read it ({err.strerror}); "
            "check the path and that this user may read it (mode 0600, owned by the service's user)"
        ) from None
    password = text.splitlines()[0] if text.strip() else ""
    if not password:
        raise ConfigError(f"mqtt_password_file {path} is empty; put the account's password on its first line")
    return password


def make_client(
    url: str,
    client_id: str,
    *,
    session_expiry_s: int = 3600,
    access: MqttAccess | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client with a persistent session; call :func:`connect` next.

    ``manual_ack``: received QoS 1 messages are acknowledged only by ``client.ack(mid, qos)``, so a receiver
    can acknowledge a message once what it did with it is durable (the broker redelivers the rest).
    Raises ConfigError when a TLS or password file cannot be used (before any connection attempt).
    """
    address = BrokerAddress.parse(url)
    access = access or MqttAccess()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    password = address.password
    if access.password_file is not None:
        password = read_password_file(access.password_file)
    if address.username:
        client.username_pw_set(address.username, password)
    if address.tls:
        _set_tls(client, access)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.max_queued_messages_set(0)  # unlimited: we track every QoS 1 message until PUBACK
    client.user_data_set({"address": address, "session_expiry_s": session_expiry_s, "access": access})
    return client


def _set_tls(client: mqtt.Client, access: MqttAccess) -> None:
    # The files are loaded here, so a missing or mismatched file is reported now, naming its setting,
    # rather than as a failed connection later.
    try:
        client.tls_set(
            ca_certs=str(access.ca_file) if access.ca_file else None,
            certfile=str(access.cert_file) if access.cert_file else None,
            keyfile=str(access.key_file) if access.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    except (OSError, ssl.SSLError) as err:
        files = ", ".join(f"{name} {path}" for name, path in _tls_files(access)) or "the system's CA store"
        raise ConfigError(
            f"cannot load the TLS files ({files}): {getattr(err, 'strerror', None) or err}. Check "
            "that mqtt_ca_file is a PEM CA certificate, and that mqtt_cert_file and mqtt_key_file are "
            "a PEM certificate and its unencrypted private key, readable by this user"
        ) from None


def _tls_files(access: MqttAccess) -> list[tuple[str, Path]]:
    named = (("mqtt_ca_file", access.ca_file), ("mqtt_cert_file", access.cert_file), ("mqtt_key_file", access.key_file))
    return [(name, path) for name, path in named if path is not None]


def _explain_connect_error(address: BrokerAddress, access: MqttAccess, err: BaseException) -> str:
    """What went wrong reaching the broker, and the fix; TLS failures name the setting to change."""
    if isinstance(err, ssl.SSLCertVerificationError):
        if "mismatch" in str(err.verify_message or err).lower():  # "Hostname mismatch", "IP address mismatch"
            return (
                f"the MQTT broker at {address} has a TLS certificate for another host name ({err.verify_message}). "
                "Connect by the name in its certificate (--mqtt-url / CRAMP_MQTT_URL), or reissue it with this name"
            )
        ca = f"mqtt_ca_file {access.ca_file}" if access.ca_file else "the system's CA store (mqtt_ca_file unset)"
        return (
            f"the MQTT broker at {address} presented a TLS certificate that {ca} does not trust "
            f"({err.verify_message}). Set --mqtt-ca-file / CRAMP_MQTT_CA_FILE to the CA certificate that "
            "signed the broker's certificate"
        )
    if isinstance(err, ssl.SSLError):
        hint = (
            " The broker may require a client certificate: set --mqtt-cert-file and --mqtt-key-file."
            if access.cert_file is None
            else " Check that the broker trusts the CA that signed mqtt_cert_file."
        )
        return f"TLS handshake with the MQTT broker at {address} failed: {err.reason or err}.{hint}"
    return (
        f"cannot reach the MQTT broker at {address}: {err}. Is it running? "
        "Set --mqtt-url / CRAMP_MQTT_URL to a reachable broker."
    )


def connect(client: mqtt.Client, *, timeout_s: float = 10.0) -> None:
    """Connect (persistent session), start paho's network thread, and wait for CONNACK."""
    data = client.user_data_get()
    address: BrokerAddress = data["address"]
    access: MqttAccess = data["access"]
    connected = threading.Event()
    failure: list[str] = []
    closed: list[str] = []
    previous: Callable[..., None] | None = client.on_connect
    previous_disconnect: Callable[..., None] | None = client.on_disconnect

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            failure.append(str(reason))
        connected.set()
        if previous is not None:
            previous(c, userdata, flags, reason, props)

    def on_disconnect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        # Closed before any CONNACK: a TLS broker that wants a client certificate does this (TLS 1.3
        # reports it only after the handshake), so stop waiting and say so.
        if not connected.is_set():
            closed.append(str(reason))
            connected.set()
        if previous_disconnect is not None:
            previous_disconnect(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = int(data["session_expiry_s"])
    try:
        client.connect(address.host, address.port, keepalive=30, clean_start=False, properties=props)
    except (OSError, socket.gaierror, ssl.SSLError) as err:
        raise BrokerError(_explain_connect_error(address, access, err)) from None
    client.loop_start()
    answered = connected.wait(timeout_s)
    client.on_connect = previous
    client.on_disconnect = previous_disconnect
    if not answered or closed:
        client.loop_stop()
        hint = (
            " If the broker requires client certificates, set --mqtt-cert-file and --mqtt-key-file."
            if address.tls and access.cert_file is None
            else ""
        )
        what = f"closed the connection ({closed[0]})" if closed else f"did not answer within {timeout_s:.0f} s"
        raise BrokerError(f"the MQTT broker at {address} {what} before accepting it (no CONNACK).{hint}")
    if failure:
        client.loop_stop()
        raise BrokerError(
            f"the MQTT broker at {address} refused the connection: {failure[0]}. Check the user name "
            "(mqtt://user@host:port) and the password (in the URL or in --mqtt-password-file), or the "
            "client certificate; ask the broker's admin whether this account exists "
            "(cramp-collector provision)."
        )
    log.info("connected to MQTT broker %s as %s", address, client._client_id.decode())


def connect_in_background(client: mqtt.Client) -> None:
    """Like :func:`connect`, but never blocks or fails: paho keeps retrying (a spooling collector starts
    while the broker is down, and sends its backlog once it is up)."""
    data = client.user_data_get()
    address: BrokerAddress = data["address"]
    _log_background_failures(client, address)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = int(data["session_expiry_s"])
    client.connect_async(address.host, address.port, keepalive=30, clean_start=False, properties=props)
    client.loop_start()
    log.info("connecting to MQTT broker %s in the background (frames are spooled meanwhile)", address)


#: While connecting in the background, log the 1st failure and then every this many (about 15 min at
#: paho's 30 s retry cap): a wrong password or CA must not spool silently all night, nor flood the log.
BACKGROUND_FAILURE_LOG_EVERY = 30


def _log_background_failures(client: mqtt.Client, address: BrokerAddress) -> None:
    """Log refused CONNACKs and failed connection attempts that paho only retries."""
    previous_connect: Callable[..., None] | None = client.on_connect
    previous_fail: Callable[..., None] | None = client.on_connect_fail
    failures = [0]

    def note(what: str) -> None:
        failures[0] += 1
        if failures[0] == 1 or failures[0] % BACKGROUND_FAILURE_LOG_EVERY == 0:
            log.error("MQTT broker %s: %s (%d attempt(s); frames are spooled meanwhile)", address, what, failures[0])

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            note(
                f"refused the connection: {reason}. Check the account in the URL and the password "
                "(--mqtt-password-file), or ask the broker's admin for one (cramp-collector provision)"
            )
        if previous_connect is not None:
            previous_connect(c, userdata, flags, reason, props)

    def on_connect_fail(c: mqtt.Client, userdata: Any) -> None:
        hint = " and, for mqtts://, that --mqtt-ca-file names the CA that signed its certificate" if address.tls else ""
        note(f"cannot connect; retrying. Check that the broker is up and reachable{hint}")
        if previous_fail is not None:
            previous_fail(c, userdata)

    client.on_connect = on_connect
    client.on_connect_fail = on_connect_fail
