"""``cramp-detector``: find muscle cramps and spasms in live sEMG + accelerometer streams and recordings.

The ``--help`` epilog lists every command of :data:`~detector.commands.COMMANDS`, generated from them.
"""

from __future__ import annotations

import argparse
import sys

from crampwatch import cli

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    description = (__doc__ or "").split("\n\n")[0].split(": ", 1)[-1]
    return cli.build_parser("cramp-detector", description, COMMANDS)


def main(argv: list[str] | None = None) -> int:
    return cli.run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
