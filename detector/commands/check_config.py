"""``cramp-detector check-config``: validate the whole set-up, then print it as a TOML file.

Checks the settings (flags, ``CRAMP_*`` environment, ``--config`` file: unknown keys and bad values are
errors), that the URLs are well formed, that the model file is there and loads (hash, allow-list, card),
and, without InfluxDB, that the events file can be written. It does not connect to the broker or InfluxDB.
"""

from __future__ import annotations

import argparse
import sys

from crampwatch.cli import output_file
from crampwatch.errors import ConfigError

NAME = "check-config"
HELP = "validate the set-up (settings, URLs, model file) and print it as TOML that --config reads back"

EPILOG = """\
The TOML goes to stdout, so 'cramp-detector check-config > detector.toml' gives a file to start from,
each setting under its description. Secrets are never printed: influx_token, and mqtt_url when it holds a
password, are written as comments with the secret as ***. Loading the file back with --config therefore
leaves them out; keep them in the environment (CRAMP_INFLUX_TOKEN, CRAMP_MQTT_URL) or add them to a copy
of the file that only the service can read."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crampwatch import settings as settings_mod

    from ..config import DetectorSettings

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    settings_mod.add_arguments(parser, DetectorSettings)


def run(args: argparse.Namespace) -> int:
    from crampwatch import settings as settings_mod

    from ..config import DetectorSettings, load_settings, open_model

    cfg = load_settings(args)
    model = open_model(cfg, args)
    if not cfg.influx_url:
        try:
            output_file(str(cfg.events_file))
        except argparse.ArgumentTypeError as err:
            where = settings_mod.origin(DetectorSettings, "events_file", args)
            raise ConfigError(f"events file ({where}): {err}") from None
    print(settings_mod.to_toml(cfg), end="")
    sink = f"InfluxDB {cfg.influx_url}" if cfg.influx_url else f"file {cfg.events_file}"
    print(
        f"settings OK: model {cfg.model} (sha256 {str(model.card.get('sha256', '?'))[:12]}), events to {sink}",
        file=sys.stderr,
    )
    return 0
