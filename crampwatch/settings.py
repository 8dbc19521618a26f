"""Settings plumbing shared by both services: flags > environment > config file > defaults.

Each service declares ONE pydantic model (``extra="forbid"``, every field described). This module turns
it into ``--flags``, reads ``CRAMP_<FIELD>`` environment variables and an optional TOML file, and turns a
validation failure into a :class:`ConfigError` that names the flag, the variable and the fix.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import ConfigError, CrampWatchError
from .topics import check_prefix

ENV_PREFIX = "CRAMP_"
S = TypeVar("S", bound="ServiceSettings")


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
        secret = "token" in name or "password" in name
        default_text = "***" if secret and default else default
        group.add_argument(
            model.flag(name),
            dest=name,
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{field.description} [env {model.env_var(name)}; default: {default_text}]",
        )


def load(model: type[S], args: argparse.Namespace | None = None, *, env: dict[str, str] | None = None) -> S:
    """Build the settings from flags (``args``), environment (``env``) and ``args.config``."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    config_file = getattr(args, "config", None) if args else None
    if config_file:
        try:
            values.update(tomllib.loads(Path(config_file).read_text()))
        except OSError as err:
            raise ConfigError(f"--config {config_file}: cannot read it ({err.strerror})") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"--config {config_file}: not valid TOML ({err})") from None
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


def _explain(model: type[ServiceSettings], err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        where = f"{model.flag(name)} / {model.env_var(name)}" if name in model.model_fields else f"setting {name!r}"
        lines.append(f"{where}: {problem['msg']} (got {problem.get('input')!r})")
    return "invalid settings:\n  " + "\n  ".join(lines)


def check_mqtt_url(url: str) -> str:
    """Validate ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; raise ValueError saying the fix."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"must start with mqtt:// or mqtts://, for example mqtt://127.0.0.1:1883, not {url!r}")
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
        raise ValueError(f"must be an http(s) URL like http://127.0.0.1:8086, not {url!r}")
    return url
