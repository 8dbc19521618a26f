"""``cramp-collector profiles``: list the supported wearables, their streams and caveats."""

from __future__ import annotations

import argparse
import textwrap

NAME = "profiles"
HELP = "list the supported BLE wearables (use a name with 'run --profile NAME')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="also show GATT UUIDs and start commands")


def run(args: argparse.Namespace) -> int:
    from ..ble import all_profiles

    for profile in all_profiles():
        streams = ", ".join(
            f"{s.kind.value.upper()} {len(s.channels)} ch {s.rate_hz:g} Hz ({s.channels[0].unit})"
            for s in profile.streams
        )
        print(f"{profile.name:<11} {profile.title}")
        print(f"{'':<11} {streams}")
        for line in textwrap.wrap(profile.notes, 96):
            print(f"{'':<11} {line}")
        if args.verbose:
            print(f"{'':<11} service {profile.service_uuid}; advertised names {', '.join(profile.local_names)}")
            for write in profile.start:
                print(f"{'':<11} start: write {write.data.hex(' ')} to {write.char_uuid}")
        print()
    return 0
