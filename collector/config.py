"""The collector's one settings model (flags, ``CRAMP_*`` environment variables, TOML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from crampwatch.settings import MqttClientSettings
from crampwatch.topics import DEFAULT_PREFIX, MAX_SHARDS, check_id, device_prefix


class CollectorSettings(MqttClientSettings):
    # mqtt_url and the mqtt_*_file settings come from MqttClientSettings (shared with the detector).
    topic_prefix: str = Field(
        DEFAULT_PREFIX, description="topic prefix; data goes to <prefix>/<patient>/<device>/<stream>"
    )
    shards: int = Field(
        0,
        ge=0,
        le=MAX_SHARDS,
        description="shard count, the same as the detectors' (0: none); data goes to <prefix>/s<k>/<patient>/...",
    )
    patient: str = Field("demo-patient", description="patient pseudonym (never a real name)")
    device: str = Field("sim01", description="device id, unique per patient")
    client_id: str = Field("", description="MQTT client id (default: cramp-collector-<patient>-<device>)")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    spool_path: Path | None = Field(
        None,
        description="store-and-forward spool file (SQLite); default <state dir>/spool-<patient>-<device>.db "
        "('run' adds -<profile>); state dir $STATE_DIRECTORY (systemd), /var/lib/crampwatch as root, "
        "else $XDG_STATE_HOME/crampwatch (~/.local/state/crampwatch)",
    )
    spool_max_mb: float = Field(
        512.0,
        gt=0,
        description="disk bound of the spool in MB; warns at 80 percent full, drops the OLDEST frames when full",
    )
    spool_sync: Literal["normal", "full"] = Field(
        "normal", description="normal: survives a collector crash; full: also power loss (one fsync per frame)"
    )
    confirm: Literal["broker", "detector"] = Field(
        "broker",
        description="when a spooled frame may be deleted: broker (after the broker's PUBACK and a save barrier; "
        "needs a broker that saves on every change) or detector (once the detector confirms it journalled; "
        "the broker need not save per message, docs/reliability.md)",
    )
    confirm_window: int = Field(
        5000, ge=1, le=1_000_000, description="confirm detector: most frames sent and not yet confirmed"
    )
    ble_silence_s: float = Field(
        0.0, ge=0, description="BLE watchdog: reconnect after this many seconds without data (0: the profile's)"
    )
    ble_backoff_max_s: float = Field(60.0, gt=0, description="BLE reconnect backoff cap in seconds")
    ble_scan_timeout_s: float = Field(10.0, gt=0, description="seconds one BLE scan looks for the sensor")
    status_interval_s: float = Field(30.0, gt=0, description="seconds between retained status messages")

    @field_validator("patient", "device")
    @classmethod
    def _ids(cls, v: str) -> str:
        try:
            return check_id(v, "id")
        except Exception as err:
            raise ValueError(str(err)) from None

    @property
    def device_prefix(self) -> str:
        """Where this patient's device topics go: the topic prefix, or its shard's (crampwatch.topics)."""
        return device_prefix(self.topic_prefix, self.patient, self.shards)

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or f"cramp-collector-{self.patient}-{self.device}"


#: The settings of a command that publishes or records devices over MQTT, without spool or radio.
MQTT_FIELDS = (
    "mqtt_url",
    "mqtt_password_file",
    "mqtt_ca_file",
    "mqtt_cert_file",
    "mqtt_key_file",
    "topic_prefix",
    "shards",
    "patient",
    "device",
    "client_id",
    "log_level",
)

#: The settings of a command that publishes devices over MQTT (simulate, replay, lsl), without spool or radio.
PUBLISH_FIELDS = (*MQTT_FIELDS, "confirm", "confirm_window")
