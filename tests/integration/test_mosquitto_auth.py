"""The compose stack's broker configuration (deploy/mosquitto) on the real Debian mosquitto: who may do what.

deploy/mosquitto/mosquitto.conf and acl are used as committed, with only paths and ports rewritten for a
temp dir, the TLS listener included (certificates made here with openssl, thrown away afterwards). Device
accounts are made by ``cramp-collector provision`` (the real mosquitto_passwd), the service accounts as
deploy/mosquitto/entrypoint.sh makes them. The clients are CrampWatch's own (crampwatch.mqtt, MQTT v5),
except where a test needs a raw paho client.

How a test knows a message did NOT arrive, without waiting for a time: mosquitto writes to one client's
connection in order, so once a client has the PUBACK of its own later publish, any message the broker
had queued for it before has been read too (paho reads in order on its one thread).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

import collector.cli
from collector.publisher import FramePublisher
from crampwatch.errors import BrokerError
from crampwatch.frames import Channel, Frame, StreamKind
from crampwatch.mqtt import MqttAccess, connect, connect_in_background, make_client
from detector.config import DetectorSettings
from detector.model import Model
from detector.service import DetectorService
from tests.certs import Pki, make_pki
from tests.servers import MosquittoServer, find_binary, free_port

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PREFIX = "cramp/v1"
PASSWORDS = {"detector": "det-secret", "reader": "read-secret"}
A = ("p-a", "dev-a")
B = ("p-b", "dev-b")


class DeployedBroker(MosquittoServer):
    """MosquittoServer running deploy/mosquitto/mosquitto.conf (and its TLS listener) instead of the tests' own."""

    def __init__(self, workdir: Path, pki: Pki, *, mutual_tls: bool = False) -> None:
        super().__init__(workdir)
        self.tls_port = free_port()
        self.pki = pki
        passwd = workdir / "passwd"
        for patient, device in (A, B):  # as an admin makes device accounts
            argv = ["provision", "--passwd-file", str(passwd), "--patient", patient, "--device", device]
            assert collector.cli.main([*argv, "--password-out", str(self.password_file((patient, device)))]) == 0
        tool = shutil.which("mosquitto_passwd") or find_binary("mosquitto_passwd")
        for user, password in PASSWORDS.items():  # as entrypoint.sh adds the service accounts
            subprocess.run([tool, str(passwd), user], input=f"{password}\n{password}\n", text=True, check=True)
        acl = workdir / "acl"
        shutil.copy(DEPLOY / "acl", acl)
        listeners = [f"listener {self.port} {self.host}", f"listener {self.tls_port} {self.host}"]
        replace = {
            "cafile": f"cafile {pki.ca}",
            "certfile": f"certfile {pki.server_cert}",
            "keyfile": f"keyfile {pki.server_key}",
            "password_file": f"password_file {passwd}",
            "acl_file": f"acl_file {acl}",
            "persistence_location": f"persistence_location {workdir}/",
            "log_dest": f"log_dest file {self.log_path}",
        }
        if mutual_tls:
            replace["#require_certificate"] = "require_certificate true"
        lines = []
        for line in (DEPLOY / "mosquitto.conf").read_text().splitlines():
            key = line.split(" ", 1)[0]
            lines.append(listeners.pop(0) if key == "listener" else replace.pop(key, line))
        assert not replace and not listeners, f"deploy/mosquitto/mosquitto.conf lacks {list(replace)} {listeners}"
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def password_file(self, account: tuple[str, str]) -> Path:
        return self.workdir / f"{account[0]}.{account[1]}.mqtt-password"

    def device_url(self, account: tuple[str, str], *, tls: bool = False) -> str:
        scheme, port = ("mqtts", self.tls_port) if tls else ("mqtt", self.port)
        return f"{scheme}://{account[0]}%2F{account[1]}@{self.host}:{port}"

    def service_url(self, user: str) -> str:
        return f"mqtt://{user}:{PASSWORDS[user]}@{self.host}:{self.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[DeployedBroker]:
    server = DeployedBroker(tmp_path_factory.mktemp("deployed-mosquitto"), pki)
    server.start()
    yield server
    server.kill()


class Client:
    """A connected CrampWatch client that records what it receives and each PUBACK's reason code."""

    def __init__(self, url: str, client_id: str, access: MqttAccess | None = None, *, session_s: int = 0) -> None:
        self.client = make_client(url, client_id, access=access, session_expiry_s=session_s)
        self.received: list[tuple[str, bytes]] = []
        self.reasons: dict[int, int] = {}
        self.session_present: bool | None = None
        self._cond = threading.Condition()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect = self._on_connect
        self._subacks: list[int] = []

    def connect(self) -> Client:
        connect(self.client)
        return self

    def _on_connect(self, c: mqtt.Client, u: object, flags: Any, reason: object, p: object) -> None:
        self.session_present = bool(flags.session_present)

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, reason: ReasonCode, p: object) -> None:
        with self._cond:
            self.reasons[mid] = reason.value
            self._cond.notify_all()

    def _on_subscribe(self, c: mqtt.Client, u: object, mid: int, reasons: object, p: object) -> None:
        with self._cond:
            self._subacks.append(mid)
            self._cond.notify_all()

    def subscribe(self, *topics: str) -> None:
        _, mid = self.client.subscribe([(t, 1) for t in topics])
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._subacks, 10), "no SUBACK"

    def publish(self, topic: str, payload: bytes = b"x") -> int:
        """Publish with QoS 1 and return the PUBACK's reason code (0x87 = 135: not authorized)."""
        info = self.client.publish(topic, payload, qos=1)
        with self._cond:
            assert self._cond.wait_for(lambda: info.mid in self.reasons, 10), f"no PUBACK for {topic}"
            return self.reasons.pop(info.mid)

    def wait_for(self, topic: str, payload: bytes) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: (topic, payload) in self.received, 10), f"{topic} never arrived"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _device(broker: DeployedBroker, account: tuple[str, str], client_id: str = "", **kw: Any) -> Client:
    access = MqttAccess(password_file=broker.password_file(account), **kw)
    return Client(broker.device_url(account, tls="ca_file" in kw), client_id or f"dev-{account[1]}", access)


def _data(account: tuple[str, str], stream: str) -> str:
    return f"{PREFIX}/{account[0]}/{account[1]}/{stream}"


def make_frame(seq: int) -> Frame:
    data = np.full((20, 1), seq, dtype=np.int16)
    return Frame(StreamKind.EMG, seq, seq * 100_000_000, 200.0, (Channel("calf", "uV", 0.5),), data)


# ------------------------------------------------------------------------------------------ identities


def _accepted(broker: DeployedBroker, user: str | None, password: str | None) -> bool:
    """Whether the broker accepts a raw paho client (no CrampWatch code in between)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-refused", protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    result: list[bool] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, p: object) -> None:
        result.append(not reason.is_failure)
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert done.wait(10), "no CONNACK"
    client.loop_stop()
    return result[0]


def test_anonymous_and_wrong_passwords_are_refused(broker: DeployedBroker, tmp_path: Path) -> None:
    assert _accepted(broker, "reader", PASSWORDS["reader"])  # the check itself can say yes
    for user, password in ((None, None), ("detector", "wrong"), ("nobody", "x"), ("p-a/dev-a", "guess")):
        assert not _accepted(broker, user, password), f"{user or 'anonymous'} was let in"
    # Through CrampWatch's own client: one error naming the fix.
    (tmp_path / "pw").write_text("not-the-password\n")
    with pytest.raises(BrokerError, match=r"refused the connection: Not authorized.*provision"):
        connect(make_client(broker.device_url(A), "x", access=MqttAccess(password_file=tmp_path / "pw")))


def test_a_device_writes_only_its_own_topics(broker: DeployedBroker) -> None:
    detector = Client(broker.service_url("detector"), "t-detector-1").connect()
    detector.subscribe(f"{PREFIX}/#")
    device = _device(broker, A).connect()
    allowed = [_data(A, "emg"), _data(A, "acc"), _data(A, "status"), _data(A, "sync")]
    denied = [
        _data(B, "emg"),  # another device
        f"{PREFIX}/{B[0]}/{A[1]}/emg",  # its own device id under another patient
        f"{PREFIX}/{A[0]}/events",  # fake events, even for its own patient
        f"{PREFIX}/dead-letter",
        f"{PREFIX}/{A[0]}/{A[1]}/emg/extra",
    ]
    for topic in allowed:
        assert device.publish(topic) < 0x80, topic  # 0 or 16 "no matching subscribers"
    for topic in denied:
        assert device.publish(topic) == 0x87, f"{topic} was not refused"
    assert device.publish(_data(A, "emg"), b"last") == 0
    detector.wait_for(_data(A, "emg"), b"last")
    device.close()
    detector.close()
    # The detector reads data and status, not the sync barrier (nor anything refused, of course).
    got = [topic for topic, _ in detector.received]
    assert got == [_data(A, "emg"), _data(A, "acc"), _data(A, "status"), _data(A, "emg")], got


def test_a_device_reads_nothing_and_the_reader_only_events(broker: DeployedBroker) -> None:
    device_a = _device(broker, A).connect()
    device_a.subscribe("#", f"{PREFIX}/#")  # granted by the broker, but every message is filtered
    reader = Client(broker.service_url("reader"), "t-reader").connect()
    reader.subscribe("#")
    detector = Client(broker.service_url("detector"), "t-detector-2").connect()
    detector.subscribe(_data(B, "emg"))
    device_b = _device(broker, B).connect()
    assert device_b.publish(_data(B, "emg"), b"b-data") == 0
    assert device_b.publish(_data(B, "status"), b"b-status") < 0x80
    assert detector.publish(f"{PREFIX}/{B[0]}/events", b"event") == 0
    detector.wait_for(_data(B, "emg"), b"b-data")
    reader.wait_for(f"{PREFIX}/{B[0]}/events", b"event")
    assert device_a.publish(_data(A, "sync")) == 0  # everything queued for A before this PUBACK is read
    for client in (device_a, reader, detector, device_b):
        client.close()
    assert device_a.received == []
    assert [t for t, _ in reader.received if not t.startswith("$SYS")] == [f"{PREFIX}/{B[0]}/events"]


def test_a_device_reads_only_its_own_confirmations_and_only_the_detector_writes_them(broker: DeployedBroker) -> None:
    """Detector confirmation (docs/reliability.md): the detector confirms on <prefix>/<patient>/<device>/confirm;
    a device reads its own confirm topic and nothing else, and cannot forge a confirmation for any device."""
    device_a = _device(broker, A).connect()
    device_a.subscribe("#", f"{PREFIX}/#", _data(B, "confirm"))  # granted, but only A's own gets through
    device_b = _device(broker, B).connect()
    detector = Client(broker.service_url("detector"), "t-detector-3").connect()
    assert detector.publish(_data(B, "confirm"), b'{"emg":1}') == 0  # device A subscribed to it: delivered
    assert detector.publish(_data(A, "confirm"), b'{"emg":7}') == 0
    device_a.wait_for(_data(A, "confirm"), b'{"emg":7}')
    for topic in (_data(A, "confirm"), _data(B, "confirm")):
        assert device_a.publish(topic) == 0x87, f"{topic}: a device forged a confirmation"
    assert device_b.publish(_data(A, "confirm")) == 0x87
    assert device_a.publish(_data(A, "sync")) == 0  # everything queued for A before this PUBACK is read
    for client in (device_a, device_b, detector):
        client.close()
    # One copy per matching subscription ("#" and "cramp/v1/#" overlap), all of them its own confirmation.
    assert set(device_a.received) == {(_data(A, "confirm"), b'{"emg":7}')}


def test_a_denied_publish_is_an_error_not_silence(broker: DeployedBroker, caplog: pytest.LogCaptureFixture) -> None:
    # Device A's account publishing as device B: every frame is refused (PUBACK 0x87 under MQTT v5).
    client = make_client(broker.device_url(A), "t-impostor", access=MqttAccess(password_file=broker.password_file(A)))
    publisher = FramePublisher(client, PREFIX, *B)
    connect(client)
    for seq in range(5):
        publisher.publish(make_frame(seq))
    with caplog.at_level(logging.ERROR), pytest.raises(BrokerError, match="refused by the broker \\(Not authorized\\)"):
        publisher.flush(timeout_s=120)
    assert publisher.stats.rejected == 5 and publisher.stats.acknowledged == 0
    assert "the broker refused 1 frame(s) (last reason: Not authorized)" in caplog.text
    assert f"account '{B[0]}/{B[1]}'" in caplog.text  # the log names the account the ACL expects
    publisher.close()
    client.loop_stop()
    client.disconnect()


def test_the_detectors_session_cannot_be_taken_over(broker: DeployedBroker) -> None:
    """Testers took over the detector's session with its public client id and swallowed 874 frames."""
    topics = [f"{PREFIX}/+/+/emg"]
    detector = Client(broker.service_url("detector"), "cramp-detector", session_s=3600).connect()
    detector.subscribe(*topics)
    detector.close()  # away for a moment; the broker keeps its session and queues for it
    device = _device(broker, A).connect()
    for seq in range(3):
        assert device.publish(_data(A, "emg"), b"frame-%d" % seq) == 0
    # Other accounts connect with the detector's client id, asking to resume its session.
    b_access = MqttAccess(password_file=broker.password_file(B))
    for attacker in (
        Client(broker.service_url("reader"), "cramp-detector", session_s=3600),
        Client(broker.device_url(B), "cramp-detector", b_access, session_s=3600),
    ):
        attacker.connect()
        assert attacker.session_present is False  # it got a session of its own, not the detector's
        attacker.subscribe(*topics)
        attacker.publish(f"{PREFIX}/probe")  # refused, but its PUBACK comes after anything queued for it
        attacker.close()
        assert attacker.received == []
    back = Client(broker.service_url("detector"), "cramp-detector", session_s=3600).connect()
    assert back.session_present is True
    back.wait_for(_data(A, "emg"), b"frame-2")
    back.close()
    device.close()
    assert [p for _, p in back.received] == [b"frame-0", b"frame-1", b"frame-2"]


# ------------------------------------------------------------------------------------------------ TLS


def test_tls_with_the_right_ca_carries_the_data(broker: DeployedBroker) -> None:
    device = _device(broker, A, ca_file=broker.pki.ca).connect()
    assert device.publish(_data(A, "emg")) < 0x80
    assert device.publish(_data(B, "emg")) == 0x87  # the same ACL on the TLS listener
    device.close()


# paho 2.2 does not close its TLS socket when the handshake fails (Client._ssl_wrap_socket); it is closed
# when collected, with a ResourceWarning. Collected here, so that warning belongs to this test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_wrong_ca_is_refused_naming_the_fix(broker: DeployedBroker) -> None:
    for ca, named in ((broker.pki.other_ca, f"mqtt_ca_file {broker.pki.other_ca}"), (None, "the system's CA store")):
        access = MqttAccess(ca_file=ca, password_file=broker.password_file(A))
        client = make_client(broker.device_url(A, tls=True), "t-ca", access=access)
        with pytest.raises(BrokerError) as err:
            connect(client)
        message = str(err.value)
        del err
        gc.collect()
        assert named in message and "Set --mqtt-ca-file / CRAMP_MQTT_CA_FILE" in message, message


def test_mutual_tls_needs_a_client_certificate(tmp_path: Path, pki: Pki) -> None:
    server = DeployedBroker(tmp_path / "mtls", pki, mutual_tls=True)
    server.start()
    try:
        access = MqttAccess(ca_file=pki.ca, password_file=server.password_file(A))
        without = make_client(server.device_url(A, tls=True), "t-no-cert", access=access)
        with pytest.raises(BrokerError, match="set --mqtt-cert-file and --mqtt-key-file"):
            connect(without, timeout_s=30)
        without.loop_stop()
        device = _device(
            server, A, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
        ).connect()  # the certificate and still the password
        assert device.publish(_data(A, "emg")) < 0x80
        device.close()
    finally:
        server.kill()


def test_a_spooling_collector_with_a_refused_account_says_so(broker: DeployedBroker, tmp_path: Path) -> None:
    """``run`` connects in the background and spools; a wrong password must not spool silently all night."""
    seen = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR and "refused the connection: Not authorized" in record.getMessage():
                seen.set()

    (tmp_path / "pw").write_text("stale-password\n")
    client = make_client(broker.device_url(A), "t-stale", access=MqttAccess(password_file=tmp_path / "pw"))
    client.reconnect_delay_set(1, 1)
    handler = Watch()
    logging.getLogger("crampwatch.mqtt").addHandler(handler)
    try:
        connect_in_background(client)
        assert seen.wait(10), "no error logged for a refused account"
    finally:
        logging.getLogger("crampwatch.mqtt").removeHandler(handler)
        client.loop_stop()


def test_the_detector_service_connects_over_tls_with_its_password_file(broker: DeployedBroker, tmp_path: Path) -> None:
    """The service's own connection set-up (detector.service) honours the TLS and password-file settings."""
    secret = tmp_path / "detector.password"
    secret.write_text(PASSWORDS["detector"] + "\n")
    settings = DetectorSettings(
        mqtt_url=f"mqtts://detector@{broker.host}:{broker.tls_port}",
        mqtt_password_file=secret,
        mqtt_ca_file=broker.pki.ca,
        events_file=tmp_path / "events.jsonl",
        dead_letter_file=tmp_path / "dead.jsonl",
        publish_events=False,
    )
    service = DetectorService(settings, cast(Model, None))  # the model is not used until frames arrive
    worker = service.start()  # connected, and the broker confirmed the subscriptions
    service.stop()
    worker.join(10)
    service.close()
    assert not worker.is_alive() and service.worker_error is None
