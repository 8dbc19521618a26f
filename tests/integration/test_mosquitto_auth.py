"""The compose stack's broker configuration (deploy/mosquitto) on the real Debian mosquitto.

The committed mosquitto.conf and ACL are used as they are, with only the paths and the port rewritten for
a temp dir; the password file is made by mosquitto_passwd as deploy/mosquitto/entrypoint.sh does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.servers import MosquittoServer, find_binary

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PASSWORDS = {"detector": "det-secret", "collector": "col-secret"}


class DeployedBroker(MosquittoServer):
    """MosquittoServer running deploy/mosquitto/mosquitto.conf instead of the tests' own config."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        passwd = workdir / "passwd"
        tool = shutil.which("mosquitto_passwd") or find_binary("mosquitto_passwd")
        for i, (user, password) in enumerate(PASSWORDS.items()):
            subprocess.run([tool, *(["-c"] if i == 0 else []), "-b", str(passwd), user, password], check=True)
        acl = workdir / "acl"
        shutil.copy(DEPLOY / "acl", acl)
        replace = {
            "listener": f"listener {self.port} {self.host}",
            "password_file": f"password_file {passwd}",
            "acl_file": f"acl_file {acl}",
            "persistence_location": f"persistence_location {workdir}/",
            "log_dest": f"log_dest file {self.log_path}",
        }
        lines = []
        for line in (DEPLOY / "mosquitto.conf").read_text().splitlines():
            key = line.split(" ", 1)[0]
            lines.append(replace.pop(key, line))
        assert not replace, f"deploy/mosquitto/mosquitto.conf lacks {list(replace)}"
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf_path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployedBroker]:
    server = DeployedBroker(tmp_path_factory.mktemp("deployed-mosquitto"))
    server.start()
    yield server
    server.kill()


def _client(broker: DeployedBroker, user: str | None, password: str | None = None) -> tuple[mqtt.Client, bool]:
    """Connect and report whether the broker accepted the account."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{os.getpid()}", protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password if password is not None else PASSWORDS[user])
    result: list[bool] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, p: object) -> None:
        result.append(not reason.is_failure)
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert done.wait(10), "no CONNACK"
    return client, result[0]


def test_anonymous_and_wrong_passwords_are_refused(broker: DeployedBroker) -> None:
    for user, password in ((None, None), ("detector", "wrong"), ("nobody", "x")):
        client, ok = _client(broker, user, password)
        client.loop_stop()
        assert not ok, f"{user or 'anonymous'} was let in"


def test_collector_data_reaches_the_detector_and_nothing_else_does(broker: DeployedBroker) -> None:
    detector, ok = _client(broker, "detector")
    assert ok
    got: list[str] = []
    subscribed = threading.Event()
    detector.on_message = lambda c, u, m: got.append(m.topic)
    detector.on_subscribe = lambda *a: subscribed.set()
    detector.subscribe("cramp/v1/#", qos=1)
    assert subscribed.wait(10)
    collector, ok = _client(broker, "collector")
    assert ok
    for topic in ("cramp/v1/p1/d1/emg", "cramp/v1/p1/d1/status", "cramp/v1/p1/events", "cramp/v1/p1/d1/cmd"):
        collector.publish(topic, b"x", qos=1).wait_for_publish(5)
    marker = collector.publish("cramp/v1/p1/d1/acc", b"last", qos=1)
    marker.wait_for_publish(5)
    deadline = threading.Event()
    for _ in range(100):
        if "cramp/v1/p1/d1/acc" in got:
            break
        deadline.wait(0.05)
    collector.loop_stop()
    detector.loop_stop()
    assert got == ["cramp/v1/p1/d1/emg", "cramp/v1/p1/d1/status", "cramp/v1/p1/d1/acc"], got
