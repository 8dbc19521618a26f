"""The detector service's one settings model (flags, ``CRAMP_*`` environment variables, TOML file)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from crampwatch import settings as settings_mod
from crampwatch.cli import output_file
from crampwatch.errors import ConfigError, ModelError
from crampwatch.settings import MqttClientSettings, check_http_url
from crampwatch.topics import DEFAULT_PREFIX, MAX_SHARDS, parse_shard_set

from .paths import DEFAULT_MODEL

if TYPE_CHECKING:
    from .model import Model


#: The settings of the commands that only need a model (detect, batch, annotate, evaluate, train).
MODEL_FIELDS = ("model",)
#: The settings the demo uses; it starts its own broker and event file unless told otherwise.
DEMO_FIELDS = ("mqtt_url", "topic_prefix", "influx_url", "influx_token", "influx_org", "influx_bucket", "model")


class DetectorSettings(MqttClientSettings):
    """Settings of ``cramp-detector serve`` (and the demo)."""

    # mqtt_url and the mqtt_*_file settings come from MqttClientSettings (shared with the collector).
    topic_prefix: str = Field(DEFAULT_PREFIX, description="topic prefix; data is <prefix>/<patient>/<device>/<stream>")
    shards: int = Field(
        0,
        ge=0,
        le=MAX_SHARDS,
        description="shard count, the same as the collectors' (0: none); see docs/scaling.md",
    )
    own_shards: str = Field(
        "", description="the shards this process serves, like '0-7,12' (empty: all); each patient stays in one"
    )
    standby_for: str = Field(
        "",
        description="shards this process takes over when the process serving them is gone (its lock in state_dir "
        "is free): 'all' or like '0-7' (empty: none); the processes must share state_dir; see docs/scaling.md",
    )
    shard_accounts: bool = Field(
        False,
        description="with shards: shard k's MQTT client logs in as the account <client_id>-s<k> (password as this "
        "process's), for a broker where an account is its client id (use_username_as_clientid); docs/security.md",
    )
    standby_poll_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="seconds between looks at the shard locks: a shard is taken over once it was free at two "
        "looks in a row, and an own shard held by another process is taken as soon as it is free",
    )
    client_id: str = Field(
        "cramp-detector",
        description="MQTT client id; keep it fixed so the broker keeps the session (the deployed broker uses the "
        "account name instead: use_username_as_clientid)",
    )
    session_expiry_s: int = Field(
        86400, ge=0, description="how long the broker keeps our session and queued frames while we are away"
    )
    influx_url: str = Field("", description="InfluxDB URL (http://host:8086); empty writes events to --events-file")
    influx_token: str = Field("", description="InfluxDB token (InfluxDB 1.8+: 'user:password')")
    influx_org: str = Field("-", description="InfluxDB organisation ('-' on InfluxDB 1.8+)")
    influx_bucket: str = Field("crampwatch", description="InfluxDB bucket (on 1.x: database[/retention policy])")
    events_file: Path = Field(
        Path("cramp-events.jsonl"), description="JSON-lines file for events when no InfluxDB is configured"
    )
    dead_letter_file: Path = Field(
        Path("cramp-dead-letter.jsonl"),
        description="JSON-lines file for events and summaries a sink refused for good, with the reason",
    )
    model: Path = Field(
        DEFAULT_MODEL, description="model file (.npz, or an older .skops) with its .card.json beside it"
    )
    publish_events: bool = Field(True, description="also publish each event as JSON on <prefix>/<patient>/events")
    open_events: bool = Field(
        True,
        description="also send each cramp and spasm while it goes on (state 'open', about 17 s after its onset), "
        "then its final event with the same id",
    )
    max_devices: int = Field(
        5000,
        ge=1,
        description="most devices streaming at once; frames from further new devices are dead-lettered",
    )
    device_idle_s: float = Field(
        1800.0,
        gt=0,
        le=7 * 86400,
        description="seconds without a frame after which a device's detection is finished and its state freed",
    )
    state_dir: Path | None = Field(
        None,
        description="directory of the detector's durable state (detector-<client id>.db, with shards one "
        "detector-<client id>-s<k>of<shards>.db per shard: frame journal, stream checkpoints, points waiting "
        "for a sink); default $STATE_DIRECTORY (systemd), /var/lib/crampwatch as "
        "root, else $XDG_STATE_HOME/crampwatch (~/.local/state/crampwatch)",
    )
    checkpoint_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="seconds between checkpoints of the streams' state; after a crash at most this much "
        "journalled data is replayed at start",
    )
    sink_retry_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="seconds between retries of a sink that cannot take writes (InfluxDB down); its points "
        "wait on disk meanwhile",
    )
    confirm_s: float = Field(
        0.5,
        ge=0,
        le=60,
        description="seconds between confirmations per device: after a commit the detector tells each device's "
        "collector, on <prefix>/<patient>/<device>/confirm, which frames are journalled (collector "
        "--confirm detector deletes them then); 0: no confirmations",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")

    @model_validator(mode="after")
    def _shards(self) -> DetectorSettings:
        try:
            parse_shard_set(self.own_shards, self.shards)
            parse_shard_set(self.standby_for, self.shards, what="standby for", empty="none")
        except ConfigError as err:
            raise ValueError(str(err)) from None
        if self.shard_accounts and not self.shards:
            raise ValueError(
                "shard accounts are the accounts of shards: set shards (the shard count) too, or leave it off"
            )
        return self

    @property
    def shard_set(self) -> frozenset[int]:
        """The shards this process owns (empty without sharding)."""
        return parse_shard_set(self.own_shards, self.shards)

    @property
    def standby_set(self) -> frozenset[int]:
        """The shards this process takes over when nobody serves them (empty: none)."""
        return parse_shard_set(self.standby_for, self.shards, what="standby for", empty="none")

    @field_validator("influx_url")
    @classmethod
    def _influx(cls, v: str) -> str:
        return check_http_url(v) if v else v


def load_settings(args: argparse.Namespace) -> DetectorSettings:
    """The detector settings of a command: its flags, then ``CRAMP_*`` variables, then ``--config``, then defaults."""
    return settings_mod.load(DetectorSettings, args)


def open_model(cfg: DetectorSettings, args: argparse.Namespace) -> Model:
    """Load ``cfg.model``; a failure names where the path came from (``--model``, ``CRAMP_MODEL``, the file)."""
    from .model import load_model

    try:
        return load_model(cfg.model)
    except ModelError as err:
        raise ModelError(f"{err} (model set by {settings_mod.origin(DetectorSettings, 'model', args)})") from None


def check_model_output(cfg: DetectorSettings, args: argparse.Namespace) -> Path:
    """``cfg.model`` as a file ``train`` can write, checked before hours of training rather than after."""
    try:
        return output_file(str(cfg.model))
    except argparse.ArgumentTypeError as err:
        raise ConfigError(f"{settings_mod.origin(DetectorSettings, 'model', args)}: {err}") from None
