"""The collector's one settings model (flags, ``CRAMP_*`` environment variables, TOML file)."""

from __future__ import annotations

from pydantic import Field, field_validator

from .settings import ServiceSettings, check_mqtt_url
from .topics import DEFAULT_PREFIX, check_id, check_prefix


class CollectorSettings(ServiceSettings):
    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883", description="MQTT broker, mqtt://[user:pass@]host:port or mqtts://..."
    )
    topic_prefix: str = Field(
        DEFAULT_PREFIX, description="topic prefix; data goes to <prefix>/<patient>/<device>/<stream>"
    )
    patient: str = Field("demo-patient", description="patient pseudonym (never a real name)")
    device: str = Field("sim01", description="device id, unique per patient")
    client_id: str = Field("", description="MQTT client id (default: cramp-collector-<patient>-<device>)")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt(cls, v: str) -> str:
        return check_mqtt_url(v)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        try:
            return check_prefix(v)
        except Exception as err:
            raise ValueError(str(err)) from None

    @field_validator("patient", "device")
    @classmethod
    def _ids(cls, v: str) -> str:
        try:
            return check_id(v, "id")
        except Exception as err:
            raise ValueError(str(err)) from None

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or f"cramp-collector-{self.patient}-{self.device}"
