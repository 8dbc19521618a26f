"""``cramp-collector scan``: find supported wearables nearby, with their address and signal strength.

Scanning needs a Bluetooth LE adapter and (on Linux) the BlueZ service on the system D-Bus; without them
the command stops with an error that says so, instead of an empty list that looks like "no sensor".
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from crampwatch.cli import positive_float

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

NAME = "scan"
HELP = "find supported BLE wearables nearby (needs a Bluetooth adapter)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="SECONDS", help="how long to listen (default 10)"
    )
    parser.add_argument("--all", action="store_true", help="also list devices no profile recognises")


async def discover(timeout_s: float) -> dict[str, tuple[BLEDevice, AdvertisementData]]:
    """Every advertising device heard within ``timeout_s``; AdapterMissingError if Bluetooth is unusable."""
    from bleak import BleakScanner
    from bleak.exc import BleakBluetoothNotAvailableError, BleakError

    from ..ble.errors import AdapterMissingError, BleError
    from ..ble.runner import adapter_problem

    try:
        return await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except (BleakBluetoothNotAvailableError, OSError) as err:
        raise AdapterMissingError(adapter_problem(err)) from None
    except BleakError as err:
        raise BleError(f"scanning failed: {err}") from None


def run(args: argparse.Namespace) -> int:
    import asyncio  # here, not at the top: `cramp-collector --help` need not load it

    from ..ble import all_profiles

    found = asyncio.run(discover(args.timeout))
    profiles = all_profiles()
    rows = []
    for device, adv in found.values():
        name = adv.local_name or device.name
        matches = [p.name for p in profiles if p.matches(name, adv.service_uuids)]
        if matches or args.all:
            rows.append((adv.rssi, device.address, name or "?", ",".join(matches) or "-"))
    if not rows:
        print(f"no supported wearable heard in {args.timeout:g} s: switch it on, bring it closer, and try again")
        return 1
    print(f"{'address':<20} {'rssi':>5}  {'profile':<12} name")
    for rssi, address, name, profile in sorted(rows, reverse=True):
        print(f"{address:<20} {rssi:>5}  {profile:<12} {name}")
    print("\nstream one with: cramp-collector run --profile PROFILE:ADDRESS --patient PSEUDONYM")
    return 0
