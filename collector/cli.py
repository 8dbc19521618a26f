"""``cramp-collector``: stream sEMG and accelerometer frames from a wearable to an MQTT broker.

    cramp-collector simulate --duration 1200 --speed max --seed 7 --truth truth.csv
    cramp-collector check-config

Every command takes ``--help``. Settings come from flags, ``CRAMP_*`` environment variables or a
``--config`` TOML file (see ``cramp-collector check-config --help``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .commands import COMMANDS, add_commands
from .errors import CollectorError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cramp-collector",
        description=(__doc__ or "").split("\n\n")[0].split(": ", 1)[-1],
        epilog="Run 'cramp-collector COMMAND --help' for a command's options.",
    )
    add_commands(parser, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = (getattr(args, "log_level", None) or os.environ.get("CRAMP_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except CollectorError as err:
        print(f"cramp-collector: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
