"""Errors of the BLE side of the collector, all :class:`~crampwatch.errors.CrampWatchError` subclasses::

    CrampWatchError
    └── BleError                 something about Bluetooth went wrong; the message says what to do
        ├── AdapterMissingError  no usable Bluetooth adapter (or no BlueZ / D-Bus) on this computer
        ├── UnknownProfileError  --profile names a profile that is not registered
        └── ProtocolError        a device sent bytes that do not follow its documented protocol

bleak's own exceptions (``BleakError``, ``BleakDeviceNotFoundError``, D-Bus errors) are translated at the
place they happen; inside the reconnect loop they are logged and retried rather than raised.
"""

from __future__ import annotations

from crampwatch.errors import CrampWatchError


class BleError(CrampWatchError):
    """A Bluetooth problem. The message names the device or adapter and the fix."""


class AdapterMissingError(BleError):
    """No Bluetooth adapter could be used (none present, powered off, or BlueZ/D-Bus not running)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            "no usable Bluetooth adapter on this computer "
            f"({detail}). Plug in or enable a Bluetooth LE adapter (check `bluetoothctl show`, "
            "`rfkill list`), and make sure the bluetooth service is running (`systemctl status bluetooth`)."
        )


class UnknownProfileError(BleError):
    """``--profile`` names a device profile that does not exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown device profile {name!r}; known profiles: {', '.join(known)} (see `cramp-collector profiles`)"
        )


class ProtocolError(BleError):
    """A notification does not follow the device's documented packet format."""
