"""A bleak backend over Google bumble's virtual radio: run the real bleak code path with no Bluetooth hardware.

Why: the collector talks to wearables only through bleak's public API (``BleakScanner``, ``BleakClient``),
and both accept ``backend=`` (since bleak 0.18). This module supplies a ``BaseBleakScanner`` and a
``BaseBleakClient`` subclass that drive a bumble ``Device`` (host stack + virtual ``Controller``) on a
``LocalLink``; fake peripherals (``tests/ble_fakes.py``) are more bumble devices on the same link. So
scanning, connecting, MTU exchange, service discovery, subscribing, writes, notifications and
disconnects all go through bleak and a real ATT/GATT implementation (devices.md §4).

Not covered (no bumble equivalent): BlueZ / D-Bus behaviour, OS caching, pairing, radio timing and loss.

    radio = VirtualRadio()
    await radio.start()
    backend = radio.backend()          # collector.ble.runner.BleakBackend(scanner=..., client=...)
    device = await BleakScanner.find_device_by_name("CrampWatch", backend=backend.scanner)
"""

from __future__ import annotations

import asyncio
import itertools
import uuid as uuid_mod
from collections.abc import Callable
from typing import Any, ClassVar, cast

from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Device, Peer
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from collector.ble.runner import BleakBackend

MTU = 247
_PROPERTY_NAMES = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


def bleak_uuid(value: Any) -> str:
    """A bumble UUID as bleak spells it: 128-bit, lower case, dashed."""
    return str(uuid_mod.UUID(bytes=bytes(value.to_bytes(force_128=True))[::-1]))


class VirtualRadio:
    """One bumble ``LocalLink`` with a central device for bleak; peripherals join with :meth:`new_device`."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self._addresses = itertools.count(1)
        self.central = self.new_device("bleak-central")
        self.scanning = False
        self.clients: list[BumbleClient] = []  # every client bleak created, oldest first

    def new_device(self, name: str) -> Device:
        address = ":".join([f"{next(self._addresses):02X}"] * 5 + ["C0"])
        controller = Controller(name, link=self.link, public_address=address)
        return Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))

    async def start(self) -> None:
        await self.central.power_on()

    def backend(self) -> BleakBackend:
        """Backend classes bound to this radio (bleak instantiates them itself)."""
        scanner = type("BumbleScanner", (BumbleScanner,), {"radio": self})
        client = type("BumbleClient", (BumbleClient,), {"radio": self})
        return BleakBackend(scanner=scanner, client=client)


def _advertisement(adv: Any) -> AdvertisementData:
    data = adv.data
    uuids: list[str] = []
    for type_id in (
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for group in data.get_all(type_id):
            uuids += [bleak_uuid(u) for u in group]
    manufacturer = {
        company: bytes(payload) for company, payload in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
    }
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.SHORTENED_LOCAL_NAME)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data={},
        service_uuids=uuids,
        tx_power=None,
        rssi=int(adv.rssi),
        platform_data=(adv,),
    )


class BumbleScanner(BaseBleakScanner):
    radio: ClassVar[VirtualRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)

    def _on_advertisement(self, adv: Any) -> None:
        data = _advertisement(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = str(adv.address).split("/")[0]
        device = self.create_or_update_device(address, address, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        self.seen_devices = {}
        if self.radio.scanning:
            raise BleakError("a scan is already running on this adapter")
        self.radio.scanning = True
        self.radio.central.on("advertisement", self._on_advertisement)
        await self.radio.central.start_scanning(filter_duplicates=False)

    async def stop(self) -> None:
        self.radio.central.remove_listener("advertisement", self._on_advertisement)
        self.radio.scanning = False
        await self.radio.central.stop_scanning()


class BumbleClient(BaseBleakClient):
    radio: ClassVar[VirtualRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        if isinstance(address_or_ble_device, BLEDevice):
            self._target: Any = address_or_ble_device.details
        else:
            self._target = Address(address_or_ble_device)
        self._connection: Any = None
        self._peer: Any = None
        self._mtu = 23
        self._closing = False
        self.radio.clients.append(self)
        #: (characteristic uuid, callback) for every start_notify, so tests can replay a late notification.
        self.notify_callbacks: list[tuple[str, NotifyCallback]] = []

    @property
    def name(self) -> str:
        return str(self._target)

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        try:
            connection = await asyncio.wait_for(self.radio.central.connect(self._target), self._timeout)
        except TimeoutError:
            raise BleakError(f"could not connect to {self._target} within {self._timeout} s") from None
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        self._peer = Peer(connection)
        self._mtu = await self._peer.request_mtu(MTU)
        await self._peer.discover_all()
        self.services = self._collect_services()

    def _collect_services(self) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in self._peer.services:
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                props = [
                    cast(CharacteristicPropertyName, n) for bit, n in _PROPERTY_NAMES if int(char.properties) & bit
                ]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    bleak_uuid(char.uuid),
                    props,
                    lambda: self._mtu - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in char.descriptors:
                    collection.add_descriptor(BleakGATTDescriptor(desc, desc.handle, bleak_uuid(desc.type), bleak_char))
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()  # unsolicited only, as bleak documents

    async def disconnect(self) -> None:
        connection, self._closing = self._connection, True
        if connection is not None:
            await connection.disconnect()
            self._connection = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not simulated")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not simulated")

    def _require(self) -> Any:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, **kwargs: Any) -> bytearray:
        return bytearray(await self._require().read_value(characteristic.obj))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, **kwargs: Any) -> bytearray:
        return bytearray(await self._require().read_value(descriptor.obj))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        await self._require().write_value(characteristic.obj, bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        await self._require().write_value(descriptor.obj, bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self.notify_callbacks.append((characteristic.uuid, callback))
        await self._require().subscribe(characteristic.obj, lambda value: callback(bytearray(value)))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        await self._require().unsubscribe(characteristic.obj)
