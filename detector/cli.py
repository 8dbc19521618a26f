"""``cramp-detector``: find muscle cramps and spasms in live sEMG + accelerometer streams and recordings.

    cramp-detector demo                       a simulated night end to end, events beside the truth
    cramp-detector serve                      live: MQTT frames -> events -> InfluxDB / file / MQTT
    cramp-detector detect night.edf --out events.csv
    cramp-detector train                      fit the model on simulated nights, write models/ + card
    cramp-detector check-config               validate settings and print them

Every command takes ``--help``. Settings come from flags, ``CRAMP_*`` environment variables or a
``--config`` TOML file (see ``cramp-detector check-config --help``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from collector.commands import add_commands
from collector.errors import CollectorError

from .commands import COMMANDS
from .errors import DetectorError


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
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except (DetectorError, CollectorError) as err:
        print(f"cramp-detector: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
