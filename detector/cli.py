"""``cramp-detector``: find muscle cramps and spasms in live sEMG + accelerometer streams and recordings.

    cramp-detector demo                       a simulated night end to end, events beside the truth
    cramp-detector serve                      live: MQTT frames -> events -> InfluxDB / file / MQTT
    cramp-detector detect night.edf --out events.csv
    cramp-detector train                      fit the model on simulated nights, write detector/models/ + card
    cramp-detector check-config               validate settings and print them

Every command takes ``--help``. Settings come from flags, ``CRAMP_*`` environment variables or a
``--config`` TOML file (see ``cramp-detector check-config --help``).
"""

from __future__ import annotations

import argparse
import sys

from crampwatch.cli import add_commands, run_command

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="cramp-detector",
        description=doc.split("\n\n")[0].split(": ", 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split("\n\n", 1)[1],
    )
    add_commands(parser, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
