"""``cramp-collector provision`` with the real mosquitto_passwd: account, secret file, pseudonym, TOML.

That the account then works on a real broker (and only for its own topics) is in
tests/integration/test_mosquitto_auth.py.
"""

from __future__ import annotations

import logging
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import collector.cli
from collector.config import CollectorSettings
from crampwatch import settings as settings_mod
from tests.servers import find_binary


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # the password file goes to the current folder by default
    for name in [n for n in __import__("os").environ if n.startswith("CRAMP_")]:
        monkeypatch.delenv(name)
    find_binary("mosquitto_passwd")  # fail loudly (never skip) when the broker's tools are missing
    yield


def _provision(capsys: pytest.CaptureFixture[str], *argv: str, passwd: Path | None = None) -> tuple[int, str, str]:
    passwd = passwd or Path("passwd")
    code = collector.cli.main(["provision", "--passwd-file", str(passwd), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _accounts(passwd: Path) -> dict[str, str]:
    return dict(line.split(":", 1) for line in passwd.read_text().splitlines())


def test_a_device_gets_an_account_a_private_password_file_and_its_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code, out, err = _provision(
        capsys, "--device", "left-calf", "--patient", "p-017", "--mqtt-url", "mqtts://b.example:8883"
    )
    assert code == 0, err
    secret_file = tmp_path / "p-017.left-calf.mqtt-password"
    password = secret_file.read_text().strip()
    assert len(password) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # Never printed, never logged.
    assert password not in out + err + caplog.text
    accounts = _accounts(tmp_path / "passwd")
    assert set(accounts) == {"p-017/left-calf"} and accounts["p-017/left-calf"].startswith("$7$")
    assert password not in (tmp_path / "passwd").read_text()
    # The TOML loads back as the collector's settings, with the account in the URL and the password file.
    toml = tomllib.loads(out)
    assert toml["mqtt_url"] == "mqtts://p-017%2Fleft-calf@b.example:8883"
    (tmp_path / "collector.toml").write_text(out)
    args = collector.cli.build_parser().parse_args(["check-config", "--config", str(tmp_path / "collector.toml")])
    cfg = settings_mod.load(CollectorSettings, args)
    assert (cfg.patient, cfg.device, cfg.mqtt_username) == ("p-017", "left-calf", "p-017/left-calf")
    assert cfg.mqtt_password_file == secret_file


def test_without_a_patient_a_random_pseudonym_is_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pseudonyms = set()
    for device in ("d1", "d2"):
        code, out, err = _provision(capsys, "--device", device)
        assert code == 0, err
        pseudonyms.add(tomllib.loads(out)["patient"])
    assert len(pseudonyms) == 2 and all(re.fullmatch(r"p-[0-9a-f]{8}", p) for p in pseudonyms)
    assert {a.split("/")[0] for a in _accounts(tmp_path / "passwd")} == pseudonyms


def test_an_existing_account_keeps_its_password_unless_rotated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _provision(capsys, "--device", "d1", "--patient", "p-1")[0] == 0
    before = _accounts(tmp_path / "passwd")["p-1/d1"]
    code, _, err = _provision(capsys, "--device", "d1", "--patient", "p-1")
    assert code == 2 and "already exists" in err and "--rotate" in err
    assert _accounts(tmp_path / "passwd")["p-1/d1"] == before
    secret_file = tmp_path / "p-1.d1.mqtt-password"
    old_password = secret_file.read_text()
    secret_file.chmod(0o644)
    assert _provision(capsys, "--device", "d1", "--patient", "p-1", "--rotate")[0] == 0
    assert _accounts(tmp_path / "passwd")["p-1/d1"] != before
    assert secret_file.read_text() != old_password and stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_a_url_with_credentials_or_a_bad_id_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _provision(capsys, "--device", "d1", "--mqtt-url", "mqtt://u:pw@h:1883")
    assert code == 2 and "without a user or password" in err
    code, _, err = _provision(capsys, "--device", "d 1")
    assert code == 2 and "--device" in err
    code, _, err = _provision(capsys, "--device", "d1", "--patient", "Jane Doe")
    assert code == 2 and "--patient" in err
    assert not (tmp_path / "passwd").exists() and not list(tmp_path.glob("*.mqtt-password"))


def test_a_failing_mosquitto_passwd_leaves_no_password_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A stand-in that fails (the real one hardly does on a writable file): the half-made secret is removed.
    code, _, err = _provision(capsys, "--device", "d1", "--patient", "p-1", "--mosquitto-passwd", "/bin/false")
    assert code == 2 and "could not add 'p-1/d1'" in err
    assert not (tmp_path / "p-1.d1.mqtt-password").exists()
