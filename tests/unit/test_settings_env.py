"""Settings: unknown CRAMP_* variables are errors, and the MQTT access settings (TLS files, password file).

The known variables are the union of both programs' settings, written out in crampwatch.settings (the
core imports neither app), so a test here fails when a setting is added to one model and not to that list.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import collector.cli
from collector.config import CollectorSettings
from crampwatch import settings as settings_mod
from crampwatch.errors import ConfigError
from crampwatch.mqtt import BrokerAddress, make_client, read_password_file, with_username
from detector.config import DetectorSettings


def test_the_known_names_are_exactly_both_programs_settings() -> None:
    both = set(CollectorSettings.model_fields) | set(DetectorSettings.model_fields)
    assert set(settings_mod.SETTING_NAMES) == both, (
        "crampwatch.settings.SETTING_NAMES must list every setting of both programs: "
        f"add {sorted(both - settings_mod.SETTING_NAMES)}, remove {sorted(settings_mod.SETTING_NAMES - both)}"
    )


def test_a_misspelt_variable_is_refused_naming_the_nearest_one() -> None:
    with pytest.raises(ConfigError) as err:
        settings_mod.load(CollectorSettings, None, env={"CRAMP_MQTT_ULR": "mqtt://h:1883", "PATH": "/bin"})
    assert "CRAMP_MQTT_ULR" in str(err.value) and "did you mean CRAMP_MQTT_URL?" in str(err.value)


def test_every_unknown_variable_is_listed_and_far_ones_get_no_guess() -> None:
    with pytest.raises(ConfigError) as err:
        settings_mod.load(DetectorSettings, None, env={"CRAMP_MODLE": "x", "CRAMP_ZZZZZZZZZZZZZZ": "1"})
    text = str(err.value)
    assert "CRAMP_MODLE (did you mean CRAMP_MODEL?)" in text
    assert "CRAMP_ZZZZZZZZZZZZZZ" in text and "CRAMP_ZZZZZZZZZZZZZZ (did" not in text


def test_the_other_programs_variables_and_the_test_variables_are_accepted() -> None:
    # One environment often serves both programs (a shell, CI, an .env file): neither refuses the other's.
    env = {
        "CRAMP_INFLUX_URL": "http://influx:8086",
        "CRAMP_MODEL": "/nowhere/model.skops",
        "CRAMP_REAL_DATA": "/data",
        "CRAMP_FUZZ_PROFILE": "ci",
    }
    cfg = settings_mod.load(CollectorSettings, None, env=env)
    assert cfg.mqtt_url == "mqtt://127.0.0.1:1883"
    assert settings_mod.load(DetectorSettings, None, env={"CRAMP_SPOOL_SYNC": "full"}).influx_url == ""


def test_non_cramp_variables_are_none_of_our_business() -> None:
    settings_mod.load(CollectorSettings, None, env={"CRAMPWATCH_X": "1", "MY_CRAMP_Y": "2"})


def test_the_error_reaches_the_user_as_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAMP_PATIENTS", "p-017")
    assert collector.cli.main(["check-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CRAMP_PATIENTS (did you mean CRAMP_PATIENT?)" in err[0]


# --------------------------------------------------------------------------------- MQTT access settings


def _load(**values: object) -> CollectorSettings:
    return CollectorSettings.model_validate(values)


def test_tls_files_need_an_mqtts_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    with pytest.raises(ConfigError, match="--mqtt-ca-file / CRAMP_MQTT_CA_FILE is set but --mqtt-url is not mqtts://"):
        _load(mqtt_url="mqtt://h:1883", mqtt_ca_file=ca)
    assert _load(mqtt_url="mqtts://h:8883", mqtt_ca_file=ca).mqtt_access.ca_file == ca


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.crt"
    cert.write_text("x")
    with pytest.raises(ConfigError, match=r"--mqtt-cert-file .* is set without --mqtt-key-file"):
        _load(mqtt_url="mqtts://h:8883", mqtt_cert_file=cert)
    with pytest.raises(ConfigError, match=r"--mqtt-key-file .* is set without --mqtt-cert-file"):
        _load(mqtt_url="mqtts://h:8883", mqtt_key_file=cert)


def test_missing_or_unusable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"CRAMP_MQTT_CA_FILE: {tmp_path / 'nope.crt'} does not exist"):
        _load(mqtt_url="mqtts://h:8883", mqtt_ca_file=tmp_path / "nope.crt")
    with pytest.raises(ConfigError, match="is a folder"):
        _load(mqtt_url="mqtt://u@h:1883", mqtt_password_file=tmp_path)


def test_the_password_comes_from_the_url_or_the_file_not_both(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-the-file\n")
    with pytest.raises(ConfigError, match="keep only the file"):
        _load(mqtt_url="mqtt://u:in-url@h:1883", mqtt_password_file=secret)
    with pytest.raises(ConfigError, match="needs a user name"):
        _load(mqtt_url="mqtt://h:1883", mqtt_password_file=secret)
    cfg = _load(mqtt_url="mqtt://p-1%2Fd1@h:1883", mqtt_password_file=secret)
    assert cfg.mqtt_username == "p-1/d1"
    client = make_client(cfg.mqtt_url, "x", access=cfg.mqtt_access)
    assert client._username == b"p-1/d1" and client._password == b"from-the-file"


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_password_file(tmp_path / "pw")


def test_check_config_prints_the_password_file_path_but_never_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("very-secret-password\n")
    argv = ["check-config", "--mqtt-url", "mqtt://p-1%2Fd1@h:1883", "--mqtt-password-file", str(secret)]
    argv += ["--spool-path", str(tmp_path / "spool.db")]
    assert collector.cli.main(argv) == 0
    printed = capsys.readouterr()
    assert "very-secret-password" not in printed.out + printed.err
    assert f'mqtt_password_file = "{secret}"' in printed.out  # a path is no secret: it round-trips


def test_unloadable_tls_files_are_a_config_error_naming_the_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    cfg = _load(mqtt_url="mqtts://h:8883", mqtt_ca_file=ca)
    with pytest.raises(ConfigError, match=f"mqtt_ca_file {ca}"):
        make_client(cfg.mqtt_url, "x", access=cfg.mqtt_access)


def test_a_shard_logs_in_as_its_own_account_with_the_process_password() -> None:
    """--shard-accounts: shard k's client logs in as <client id>-s<k>; the password and address stay."""
    url = with_username("mqtts://detector-a:p%40ss%2Fw@broker.example.org:8883", "detector-s3")
    address = BrokerAddress.parse(url)
    assert (address.username, address.password, address.host, address.port) == (
        "detector-s3",
        "p@ss/w",
        "broker.example.org",
        8883,
    )
    assert BrokerAddress.parse(with_username("mqtt://h", "a/b")).username == "a/b"
    with pytest.raises(ConfigError, match="shard accounts are the accounts of shards"):
        settings_mod.load(DetectorSettings, env={"CRAMP_SHARD_ACCOUNTS": "true"})
