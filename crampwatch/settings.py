"""Settings plumbing shared by both services: flags > environment > config file > defaults.

Each service declares ONE pydantic model (``extra="forbid"``, every field described). This module turns
it into ``--flags``, reads ``CRAMP_<FIELD>`` environment variables and an optional TOML file, and turns a
validation failure into a :class:`ConfigError` that names the flag, the variable and the fix.

A ``CRAMP_*`` variable that no setting of either program has is an error too, like an unknown TOML key:
a misspelt ``CRAMP_MQTT_ULR`` would otherwise be ignored and the default used without a word. The known
names are the union of both programs' settings (:data:`SETTING_NAMES`), because one environment (a
shell, a CI job, an ``.env`` file) often serves both programs: the collector ignores ``CRAMP_INFLUX_URL``
rather than refusing it. Plus the few variables that are not settings (:data:`OTHER_VARIABLES`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, CrampWatchError
from .topics import check_prefix

if TYPE_CHECKING:  # imported when used: offline commands need no paho
    from .mqtt import MqttAccess

ENV_PREFIX = "CRAMP_"
S = TypeVar("S", bound="ServiceSettings")

#: Every setting of both programs (collector.config.CollectorSettings and detector.config.DetectorSettings).
#: Written out because the core imports neither app; tests/unit/test_settings_env.py fails when it drifts.
SETTING_NAMES: frozenset[str] = frozenset(
    {
        # both
        "mqtt_url",
        "mqtt_password_file",
        "mqtt_ca_file",
        "mqtt_cert_file",
        "mqtt_key_file",
        "topic_prefix",
        "shards",
        "client_id",
        "log_level",
        # collector
        "patient",
        "device",
        "spool_path",
        "spool_max_mb",
        "spool_sync",
        "ble_silence_s",
        "ble_backoff_max_s",
        "ble_scan_timeout_s",
        "status_interval_s",
        "confirm",
        "confirm_window",
        # detector
        "session_expiry_s",
        "influx_url",
        "influx_token",
        "influx_org",
        "influx_bucket",
        "events_file",
        "dead_letter_file",
        "model",
        "publish_events",
        "max_devices",
        "device_idle_s",
        "state_dir",
        "checkpoint_s",
        "sink_retry_s",
        "own_shards",
        "standby_for",
        "shard_accounts",
        "standby_poll_s",
        "open_events",
        "confirm_s",
    }
)
#: ``CRAMP_*`` variables that are not settings, and who reads them.
OTHER_VARIABLES: Mapping[str, str] = {
    "CRAMP_REAL_DATA": "folder of the real recordings for the scenario suite (crampwatch.scenarios)",
    "CRAMP_REAL_EDF": "folder of real EDF files for tests/unit/test_formats_channels.py",
    "CRAMP_FUZZ_PROFILE": "hypothesis profile of tests/unit/test_fuzz.py and test_fuzz_readers.py",
    "CRAMP_FUZZ_SCALE": "multiplies the example counts of the fuzz tests' hypothesis profile (docs/reliability.md)",
}


class ServiceSettings(BaseModel):
    """Base of a service's settings model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Settings every service has; validated once here (check_fields=False: a service may lack one).
    @field_validator("mqtt_url", check_fields=False)
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        return check_mqtt_url(v)

    @field_validator("topic_prefix", check_fields=False)
    @classmethod
    def _topic_prefix(cls, v: str) -> str:
        try:
            return check_prefix(v)
        except CrampWatchError as err:  # pydantic reports only ValueError with the setting's name
            raise ValueError(str(err)) from None

    @field_validator("log_level", check_fields=False)
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    @classmethod
    def flag(cls, name: str) -> str:
        return "--" + name.replace("_", "-")

    @classmethod
    def env_var(cls, name: str) -> str:
        return ENV_PREFIX + name.upper()


class MqttClientSettings(ServiceSettings):
    """The MQTT connection settings of both services: one definition, validated once.

    The password comes from ``mqtt_url`` (``mqtt://user:pass@host``) or, better, from
    ``mqtt_password_file``, so it is in no process list, environment dump or shell history. The TLS files
    apply to ``mqtts://`` only. Files are checked here, so ``check-config`` reports a wrong path.
    """

    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        description="MQTT broker, mqtt://[user[:pass]@]host:port or mqtts://... for TLS (user %2F for '/')",
    )
    mqtt_password_file: Path | None = Field(
        None, description="file whose first line is the MQTT password (instead of a password in mqtt_url)"
    )
    mqtt_ca_file: Path | None = Field(
        None, description="CA certificate (PEM) that signed the broker's TLS certificate; unset: the system's CAs"
    )
    mqtt_cert_file: Path | None = Field(
        None, description="client certificate (PEM) for a broker that requires one (with mqtt_key_file)"
    )
    mqtt_key_file: Path | None = Field(None, description="private key (PEM, unencrypted) of mqtt_cert_file")

    @model_validator(mode="after")
    def _mqtt_access(self) -> Self:
        # ConfigError, not ValueError: these are about several settings at once, and pydantic would report
        # a ValueError here without any setting's name.
        def where(name: str) -> str:
            return f"{self.flag(name)} / {self.env_var(name)}"

        parts = urlsplit(self.mqtt_url)
        tls_files = [n for n in ("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file") if getattr(self, n) is not None]
        if tls_files and parts.scheme != "mqtts":
            raise ConfigError(
                f"{where(tls_files[0])} is set but --mqtt-url is not mqtts://: use mqtts://host:8883 for TLS, "
                "or unset the TLS files"
            )
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            pair = ("mqtt_cert_file", "mqtt_key_file")
            given, missing = pair if self.mqtt_key_file is None else pair[::-1]
            raise ConfigError(f"{where(given)} is set without {where(missing)}: a client certificate needs both")
        if self.mqtt_password_file is not None:
            if parts.password:
                raise ConfigError(
                    f"{where('mqtt_password_file')} is set and --mqtt-url holds a password too: keep only the file"
                )
            if not parts.username:
                raise ConfigError(
                    f"{where('mqtt_password_file')} needs a user name in --mqtt-url (mqtt://USER@host:port)"
                )
        files = ["mqtt_password_file"] if self.mqtt_password_file is not None else []
        for name in files + tls_files:
            path: Path = getattr(self, name)
            if not path.expanduser().is_file():
                problem = "is a folder" if path.expanduser().is_dir() else "does not exist"
                raise ConfigError(f"{where(name)}: {path} {problem}; give the path of the file")
            if not os.access(path.expanduser(), os.R_OK):
                raise ConfigError(f"{where(name)}: {path} is not readable by this user; check its owner and mode")
        return self

    @property
    def mqtt_access(self) -> MqttAccess:
        """The TLS and password files, for :func:`crampwatch.mqtt.make_client`."""
        from .mqtt import MqttAccess

        return MqttAccess(
            ca_file=self.mqtt_ca_file,
            cert_file=self.mqtt_cert_file,
            key_file=self.mqtt_key_file,
            password_file=self.mqtt_password_file,
        )

    @property
    def mqtt_username(self) -> str | None:
        """The account name in ``mqtt_url``, decoded (``p-017%2Fleft`` is ``p-017/left``)."""
        username = urlsplit(self.mqtt_url).username
        return unquote(username) if username else None


def add_arguments(
    parser: argparse.ArgumentParser, model: type[ServiceSettings], fields: Iterable[str] | None = None
) -> None:
    """One ``--flag`` per field, with its description, default and environment variable in the help.

    ``fields`` limits the flags to the settings a command uses (default: all of them); the others still
    load from the environment and the ``--config`` file, so one file serves every command of a service.
    """
    group = parser.add_argument_group("settings (flag > environment variable > --config file > default)")
    group.add_argument("--config", type=Path, metavar="FILE", help="TOML file with any of these settings")
    shown = model.model_fields if fields is None else {name: model.model_fields[name] for name in fields}
    for name, field in shown.items():
        default = field.default if field.default is not None else "unset"
        default_text = masked(name, default)[0]
        group.add_argument(
            model.flag(name),
            dest=name,
            default=None,
            metavar=name.split("_")[-1].upper(),
            # argparse expands %-formats in help: a literal % (as in "%2F") must be doubled.
            help=f"{field.description} [env {model.env_var(name)}; default: {default_text}]".replace("%", "%%"),
        )


def load(model: type[S], args: argparse.Namespace | None = None, *, env: dict[str, str] | None = None) -> S:
    """Build the settings from flags (``args``), environment (``env``) and ``args.config``."""
    env = dict(os.environ) if env is None else env
    check_environment(env)
    values: dict[str, Any] = {}
    config_file = getattr(args, "config", None) if args else None
    if config_file:
        try:
            values.update(tomllib.loads(Path(config_file).read_text(encoding="utf-8")))
        except OSError as err:
            raise ConfigError(f"--config {config_file}: cannot read it ({err.strerror})") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"--config {config_file}: not valid TOML ({err})") from None
        except UnicodeDecodeError as err:  # TOML is UTF-8; a binary or Latin-1 file fails before parsing
            raise ConfigError(
                f"--config {config_file}: not UTF-8 text (undecodable byte at offset {err.start}); "
                "save it as UTF-8 TOML"
            ) from None
        unknown = sorted(set(values) - set(model.model_fields))
        if unknown:
            raise ConfigError(
                f"--config {config_file}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(model.model_fields)}"
            )
    for name in model.model_fields:
        if model.env_var(name) in env:
            values[name] = env[model.env_var(name)]
        flag_value = getattr(args, name, None) if args else None
        if flag_value is not None:
            values[name] = flag_value
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ConfigError(_explain(model, err)) from None


def known_variables() -> set[str]:
    """Every ``CRAMP_*`` environment variable either program reads."""
    return {ServiceSettings.env_var(name) for name in SETTING_NAMES} | set(OTHER_VARIABLES)


def check_environment(env: Mapping[str, str]) -> None:
    """Raise ConfigError for a ``CRAMP_*`` variable that nothing reads, naming the nearest known one."""
    known = known_variables()
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)
    if not unknown:
        return
    problems = []
    for name in unknown:
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        problems.append(f"{name}" + (f" (did you mean {near[0]}?)" if near else ""))
    raise ConfigError(
        f"unknown environment variable(s) {', '.join(problems)}: no setting of cramp-collector or "
        "cramp-detector has that name. Fix the spelling or unset it; '--help' of a command lists each "
        "setting's variable"
    )


def origin(
    model: type[ServiceSettings], name: str, args: argparse.Namespace | None, env: dict[str, str] | None = None
) -> str:
    """Where setting ``name`` came from, as a user would fix it: its flag, its variable, the file, or the default.

    Why: "model file /tmp/nope not found" is only actionable once the user knows it was CRAMP_MODEL.
    """
    env = dict(os.environ) if env is None else env
    if args is not None and getattr(args, name, None) is not None:
        return model.flag(name)
    if model.env_var(name) in env:
        return model.env_var(name)
    config_file = getattr(args, "config", None) if args else None
    if config_file:
        try:
            if name in tomllib.loads(Path(config_file).read_text(encoding="utf-8")):
                return f"{name} in --config {config_file}"
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            pass  # load() has already reported an unreadable file
    return f"the default {model.flag(name)}"


def is_set(
    model: type[ServiceSettings], name: str, args: argparse.Namespace | None, env: dict[str, str] | None = None
) -> bool:
    """Whether setting ``name`` was given (flag, environment or ``--config`` file), not left at its default."""
    return not origin(model, name, args, env).startswith("the default ")


def _explain(model: type[ServiceSettings], err: ValidationError) -> str:
    # One line however many problems: the CLI prints exactly one error line (crampwatch.cli).
    problems = []
    for problem in err.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        where = f"{model.flag(name)} / {model.env_var(name)}" if name in model.model_fields else f"setting {name!r}"
        message = str(problem["msg"]).removeprefix("Value error, ")
        given = problem.get("input")
        shown = SECRET_MASK if is_secret(name) else mask_url(given) if isinstance(given, str) else given
        got = f" (got {shown!r})" if repr(shown) not in message else ""  # the message may quote it already
        problems.append(f"{where}: {message}{got}")
    return "invalid setting " + "; ".join(problems)


# ------------------------------------------------------------------------------------------------ secrets

SECRET_MASK = "***"  # noqa: S105 - the mask, not a password


def is_secret(name: str) -> bool:
    """Whether the setting ``name`` holds a secret that is never printed (tokens, passwords).

    A ``*_file`` setting holds only the path of a secret (``mqtt_password_file``), which is printed so
    that ``check-config``'s TOML keeps it.
    """
    return not name.endswith("_file") and any(word in name for word in ("token", "password", "secret"))


def mask_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``; other text unchanged."""
    # By hand, not urlsplit: a password with an unescaped '/' or '[' must still be masked, so everything
    # between the user name and the last '@' goes (over-masking a path is harmless, leaking is not).
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{SECRET_MASK}@{host}"


def masked(name: str, value: object) -> tuple[object, bool]:
    """The printable form of setting ``name`` and whether anything in it was masked."""
    if is_secret(name) and value:
        return SECRET_MASK, True
    if isinstance(value, str) and mask_url(value) != value:
        return mask_url(value), True
    return value, False


# ------------------------------------------------------------------------------------------ TOML output


def to_toml(cfg: ServiceSettings) -> str:
    """``cfg`` as a TOML file that :func:`load` reads back (``--config``), each key under its description.

    Secrets are never printed: a setting that holds one (see :func:`masked`) is written as a comment with
    the secret replaced by ``***``, so loading the file back leaves it out and it keeps coming from the
    environment (``CRAMP_*``) or from a file only its owner can read. Unset optional settings are comments
    too (TOML has no null).
    """
    lines = []
    for name, field in type(cfg).model_fields.items():
        value = getattr(cfg, name)
        lines.append(f"# {field.description} [env {cfg.env_var(name)}]")
        shown, was_masked = masked(name, value)
        if was_masked:
            lines.append(f"# {name} = {toml_value(shown)}  # secret masked; set it in {cfg.env_var(name)}")
        elif value is None:
            lines.append(f"# {name} =  # unset")
        else:
            lines.append(f"{name} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def toml_value(value: object) -> str:
    """``value`` as a TOML value (strings quoted and escaped, paths as strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(text, text)
    # A JSON string is a valid TOML basic string (same escapes), for str, Path and enum-like values.
    return json.dumps(str(value), ensure_ascii=False)


def check_mqtt_url(url: str) -> str:
    """Validate ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; raise ValueError saying the fix."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(
            f"must start with mqtt:// or mqtts://, for example mqtt://127.0.0.1:1883, not {mask_url(url)!r}"
        )
    if not parts.hostname:
        raise ValueError("needs a host, for example mqtt://127.0.0.1:1883")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("port must be a number from 1 to 65535") from None
    return url


def check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL like http://127.0.0.1:8086, not {mask_url(url)!r}")
    return url


def default_state_dir() -> Path:
    """Where the services keep their durable state (collector spools, detector journal and queue) by default.

    ``$STATE_DIRECTORY`` when systemd provides one (``StateDirectory=crampwatch`` in the unit), else
    ``/var/lib/crampwatch`` for root, else ``$XDG_STATE_HOME/crampwatch`` (``~/.local/state/crampwatch``).
    """
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/crampwatch")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "crampwatch"
