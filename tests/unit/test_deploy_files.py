"""docker-compose.yml and the provisioning files, checked offline (no Docker engine or Grafana here).

The compose file is validated against the Compose Specification JSON schema (Apache-2.0,
compose-spec/compose-spec) as shipped inside the ``check-jsonschema`` test dependency, so nothing is
downloaded at test time. Variables are interpolated from the committed .env.example, as docker compose
would from a real .env.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from collector.config import CollectorSettings

ROOT = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _env_example() -> dict[str, str]:
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def _interpolate(text: str, env: dict[str, str]) -> str:
    """docker compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; $$ is a literal $."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        assert op != ":?", f"${{{name}}} is required ({arg}) but .env.example does not set it"
        return arg if op in (":-", "-") else ""

    return _VAR.sub(sub, text).replace("$$", "$")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text(), _env_example()))
    return loaded


def _schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def test_compose_file_matches_the_compose_specification() -> None:
    errors = sorted(Draft202012Validator(_schema()).iter_errors(_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_has_teeth() -> None:
    bad = _compose()
    bad["services"]["grafana"]["healthcheck"]["retry"] = 3  # not a healthcheck key
    bad["services"]["mosquitto"]["restart"] = ["always"]
    messages = " | ".join(e.message for e in Draft202012Validator(_schema()).iter_errors(bad))
    assert "'retry' does not match" in messages and "['always'] is not of type 'string'" in messages


def test_compose_services_are_complete_and_their_files_exist() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "detector", "demo-collector", "grafana"}
    assert services["demo-collector"]["profiles"] == ["demo"]  # only with --profile demo
    for name, svc in services.items():
        assert "image" in svc, f"{name}: no image name"
        tag = svc["image"].rpartition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: pin the image to a full version, not {tag!r}"
        if name not in ("detector", "demo-collector"):
            assert "healthcheck" in svc, f"{name}: no healthcheck"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: named volume {source} not declared"
        for dep, condition in svc.get("depends_on", {}).items():
            assert dep in services and condition == {"condition": "service_healthy"}
    assert services["influxdb"]["image"].startswith("influxdb:2.7.")
    build = services["detector"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_secrets_come_only_from_the_env_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m.group(1) for m in _VAR.finditer(text)}
    example = _env_example()
    assert used <= set(example), f"not in .env.example: {used - set(example)}"
    assert all(v == "CHANGE-ME" for k, v in example.items() if "PASSWORD" in k or "TOKEN" in k)
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    for secret in ("PASSWORD", "TOKEN"):
        for line in text.splitlines():
            if secret in line and ":" in line and not line.lstrip().startswith("#"):
                assert "${" in line or "$$" in line, f"hard-coded secret? {line.strip()}"


def test_detector_environment_is_valid_settings() -> None:
    from crampwatch.settings import load
    from detector.config import DetectorSettings

    env = _compose()["services"]["detector"]["environment"]
    cfg = load(DetectorSettings, None, env={k: str(v) for k, v in env.items()})
    assert cfg.mqtt_url == "mqtt://detector:CHANGE-ME@mosquitto:1883" and cfg.influx_url == "http://influxdb:8086"
    assert cfg.influx_bucket == "crampwatch"


def test_mosquitto_needs_accounts_and_acl() -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in conf
    # A listener option: each listener must have it, or that listener lets ids be taken over.
    listeners = "\n".join(conf).split("\nlistener ")[1:]
    assert len(listeners) == 2 and all("\nuse_username_as_clientid true\n" in part for part in listeners)
    acl_line = next(line for line in conf if line.startswith("acl_file "))
    assert acl_line.split()[1] == "/mosquitto/config/acl"  # docker-compose.yml mounts deploy/mosquitto there
    assert "./deploy/mosquitto:/mosquitto/config:ro" in _compose()["services"]["mosquitto"]["volumes"]
    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    assert "user detector" in acl and "user reader" in acl and "pattern write cramp/v1/%u/emg" in acl
    assert "user collector" not in acl  # no shared account: every wearable has its own
    entry = (ROOT / "deploy/mosquitto/entrypoint.sh").read_text()
    compose = _compose()["services"]
    for user, variable in (
        ("detector", "MQTT_DETECTOR_PASSWORD"),
        ("demo-patient/sim01", "MQTT_DEMO_COLLECTOR_PASSWORD"),
        ("reader", "MQTT_READER_PASSWORD"),
    ):
        assert f'add_account {user} "${variable}"' in entry
        assert variable in compose["mosquitto"]["environment"]
    # The healthcheck must not use the detector's account: its client id would take over the session.
    assert "-u reader" in " ".join(compose["mosquitto"]["healthcheck"]["test"])


def test_the_tls_listener_block_is_what_the_entrypoint_cuts_out() -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    block = re.search(r"^# --- TLS begin.*?^# --- TLS end$", conf, flags=re.MULTILINE | re.DOTALL)
    assert block is not None
    assert "listener 8883" in block.group() and "keyfile /mosquitto/certs/server.key" in block.group()
    outside = conf.replace(block.group(), "")
    assert "8883" not in outside and "cafile" not in outside
    assert "sed '/^# --- TLS begin/,/^# --- TLS end/d'" in (ROOT / "deploy/mosquitto/entrypoint.sh").read_text()


def test_the_demo_collector_uses_its_own_account() -> None:
    from crampwatch.settings import load

    env = _compose()["services"]["demo-collector"]["environment"]
    cfg = load(CollectorSettings, None, env={k: str(v) for k, v in env.items()})
    assert cfg.mqtt_username == f"{cfg.patient}/{cfg.device}" == "demo-patient/sim01"


def test_influxdb_gets_a_dbrp_mapping_for_influxql() -> None:
    script = (ROOT / "deploy/influxdb/init/10-dbrp.sh").read_text()
    ds = _load(ROOT / "deploy/grafana/provisioning/datasources/crampwatch.yml")["datasources"][0]
    assert f"--db {ds['jsonData']['dbName']} --rp autogen" in script
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token $INFLUXDB_TOKEN"
    assert "INFLUXDB_TOKEN" in _compose()["services"]["grafana"]["environment"]


def test_grafana_datasource_provisioning() -> None:
    ds = _load(ROOT / "deploy/grafana/provisioning/datasources/crampwatch.yml")["datasources"][0]
    assert ds["type"] == "influxdb" and ds["uid"] and ds["jsonData"]["dbName"] == "crampwatch"
    assert ds["jsonData"]["version"] == "InfluxQL" and ds["jsonData"]["httpMode"] == "POST"


def test_data_retention_is_a_setting_of_the_env_file() -> None:
    env = _compose()["services"]["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_RETENTION"] == _env_example()["INFLUXDB_RETENTION"]
    assert "${INFLUXDB_RETENTION" in (ROOT / "docker-compose.yml").read_text()
    assert "INFLUXDB_RETENTION" in (ROOT / "docs/security.md").read_text()
