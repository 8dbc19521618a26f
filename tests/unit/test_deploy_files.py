"""docker-compose.yml and the provisioning files, checked offline (no Docker engine or Grafana here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_compose_services_are_complete_and_their_files_exist() -> None:
    compose = _load(ROOT / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "detector", "grafana"}
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: named volume {source} not declared"
        for dep in svc.get("depends_on", []):
            assert dep in services
    build = services["detector"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_detector_environment_is_valid_settings() -> None:
    from crampwatch.settings import load
    from detector.config import DetectorSettings

    env = _load(ROOT / "docker-compose.yml")["services"]["detector"]["environment"]
    cfg = load(DetectorSettings, None, env={k: str(v) for k, v in env.items()})
    assert cfg.mqtt_url == "mqtt://mosquitto:1883" and cfg.influx_url == "http://influxdb:8086"


def test_grafana_datasource_provisioning() -> None:
    ds = _load(ROOT / "deploy/grafana/provisioning/datasources/crampwatch.yml")["datasources"][0]
    assert ds["type"] == "influxdb" and ds["uid"] and ds["jsonData"]["dbName"] == "crampwatch"
