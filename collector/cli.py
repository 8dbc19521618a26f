"""``cramp-collector``: stream sEMG and accelerometer frames from a wearable to an MQTT broker.

    cramp-collector simulate --duration 1200 --speed max --seed 7 --truth truth.csv
    cramp-collector check-config

Every command takes ``--help``. Settings come from flags, ``CRAMP_*`` environment variables or a
``--config`` TOML file (see ``cramp-collector check-config --help``).
"""

from __future__ import annotations

import argparse
import sys

from crampwatch.cli import add_commands, run_command

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cramp-collector",
        description=(__doc__ or "").split("\n\n")[0].split(": ", 1)[-1],
        epilog="Run 'cramp-collector COMMAND --help' for a command's options.",
    )
    add_commands(parser, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
