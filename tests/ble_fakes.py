"""In-process bumble peripherals that speak each device's documented protocol, for the BLE tests.

Each fake is a bumble ``Device`` on a :class:`tests.ble_backend.VirtualRadio` with the device's GATT table
(vendor service, data/command characteristics, Battery and Device Information services where the real
one has them) and its command semantics: it streams only after its start command, only to subscribed
centrals (so a collector that starts before subscribing loses data, as with real devices, bleak #374),
and the Ganglion resets on every connection. Sample values are deterministic functions of the device's
sample index, so a test can check continuity, order and gaps of what reached the spool.

Test controls: :meth:`drop` (the link breaks), :meth:`go_away` / :meth:`come_back` (out of range),
``stalled = True`` (connected but silent, as BlueZ sometimes is), ``skip_ticks = n`` (the packets of
the next n streaming ticks are produced but never sent: a device-side sequence gap).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from collector.ble.profiles import bitalino, crampwatch, ganglion, myo, polar
from tests.ble_backend import VirtualRadio

BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE = "0000180a-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
SOFTWARE_REVISION = "00002a28-0000-1000-8000-00805f9b34fb"

NOTIFY = Characteristic.Properties.NOTIFY
INDICATE = Characteristic.Properties.INDICATE
READ = Characteristic.Properties.READ
WRITE = Characteristic.Properties.WRITE
WRITE_NR = Characteristic.Properties.WRITE_WITHOUT_RESPONSE


def _uuid(text: str) -> UUID:
    return UUID(text)


class FakePeripheral:
    """Common machinery: advertising, connection tracking, start/stop, paced streaming, test controls."""

    local_name = "Fake"
    service_uuid = ""
    period_s = 0.04  # one streaming tick
    battery = 87

    def __init__(self, radio: VirtualRadio) -> None:
        self.radio = radio
        self.device = radio.new_device(self.local_name)
        self.connections = 0
        self.start_commands = 0
        self.subscribed: set[str] = set()
        self.subscribed_at_start: list[bool] = []  # per start command: all data characteristics subscribed?
        self.packets_sent = 0
        self.stalled = False
        self.skip_ticks = 0
        self.streaming = False
        self._task: asyncio.Task[None] | None = None
        self._connection: Connection | None = None
        self._advertising = False
        self.data_chars: dict[str, Characteristic[Any]] = {}
        self.device.on("connection", self._on_connection)

    # -- GATT --------------------------------------------------------------------------------------

    def services(self) -> list[Service]:
        raise NotImplementedError

    def data_characteristic(self, uuid: str, properties: Any = NOTIFY) -> Characteristic[Any]:
        char: Characteristic[Any] = Characteristic(_uuid(uuid), properties, Characteristic.READABLE, b"")

        def on_subscription(connection: Any, notify: bool, indicate: bool) -> None:
            if notify or indicate:
                self.subscribed.add(uuid)
            else:
                self.subscribed.discard(uuid)

        char.on(char.EVENT_SUBSCRIPTION, on_subscription)
        self.data_chars[uuid] = char
        return char

    def command_characteristic(self, uuid: str, properties: Any = WRITE | WRITE_NR) -> Characteristic[Any]:
        def on_write(connection: Any, value: bytes) -> None:
            self.on_command(bytes(value))

        return Characteristic(_uuid(uuid), properties, Characteristic.WRITEABLE, CharacteristicValue(write=on_write))

    def battery_service(self) -> Service:
        return Service(
            _uuid(BATTERY_SERVICE),
            [Characteristic(_uuid(BATTERY_LEVEL), READ, Characteristic.READABLE, bytes([self.battery]))],
        )

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.local_name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        _uuid(self.service_uuid).to_bytes(),
                    ),
                ]
            )
        )

    async def start(self) -> None:
        self.device.add_services(self.services())
        self.device.advertising_data = self.advertising_data()
        await self.device.power_on()
        await self.come_back()

    # -- connection events -------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self.connections += 1
        self._connection = connection
        self.subscribed.clear()
        self.on_connect()
        connection.on("disconnection", lambda reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        if connection is self._connection:
            self._connection = None
            self.subscribed.clear()
            self.stop_streaming()
            if self._advertising:
                asyncio.get_running_loop().create_task(self._advertise())

    def on_connect(self) -> None:
        """Hook: what the device does when a central connects (the Ganglion resets)."""

    def on_command(self, command: bytes) -> None:
        raise NotImplementedError

    # -- streaming ---------------------------------------------------------------------------------

    def start_streaming(self) -> None:
        self.start_commands += 1
        self.subscribed_at_start.append(set(self.data_chars) <= self.subscribed)
        if self.streaming:
            return
        self.streaming = True
        self._task = asyncio.get_running_loop().create_task(self._stream())

    def stop_streaming(self) -> None:
        self.streaming = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def ticks(self) -> Iterator[list[tuple[str, bytes]]]:
        """Packets (characteristic uuid, bytes) for each streaming tick, forever."""
        raise NotImplementedError

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        for packets in self.ticks():
            if not self.streaming:
                return
            if self.skip_ticks > 0:
                self.skip_ticks -= 1  # produced, never sent: a gap in the device's counters
                packets = []
            for uuid, payload in packets:
                if self.stalled:
                    continue
                await self.device.notify_subscribers(self.data_chars[uuid], payload)
                self.packets_sent += 1
            due += self.period_s
            await asyncio.sleep(max(0.0, due - loop.time()))

    # -- test controls -----------------------------------------------------------------------------

    async def _advertise(self) -> None:
        if self._connection is None and not self.device.is_advertising:
            await self.device.start_advertising(advertising_interval_min=20, advertising_interval_max=20)

    async def drop(self) -> None:
        """The link breaks (from the peripheral's side, as a supervision timeout would look)."""
        if self._connection is not None:
            await self._connection.disconnect()

    async def go_away(self) -> None:
        """Out of range: stop advertising and drop any connection."""
        self._advertising = False
        if self.device.is_advertising:
            await self.device.stop_advertising()
        await self.drop()

    async def come_back(self) -> None:
        self._advertising = True
        await self._advertise()


class FakeCrampWatchSensor(FakePeripheral):
    """Our own protocol (collector.ble.profiles.crampwatch), 2 EMG channels at 500 Hz + ACC at 50 Hz."""

    local_name = "CrampWatch-01"
    service_uuid = crampwatch.SERVICE_UUID
    info = crampwatch.SensorInfo(1, 2, 500, 50, 4.0, 1 / 1024)

    def __init__(self, radio: VirtualRadio) -> None:
        super().__init__(radio)
        self.seq = {crampwatch.TYPE_EMG: 0, crampwatch.TYPE_ACC: 0}
        self.boot = 0.0
        self.emg_index = 0
        self.acc_index = 0

    def services(self) -> list[Service]:
        data = self.data_characteristic(crampwatch.DATA_UUID)
        control = self.command_characteristic(crampwatch.CONTROL_UUID, WRITE)
        info = Characteristic(_uuid(crampwatch.INFO_UUID), READ, Characteristic.READABLE, self.info.pack())
        return [Service(_uuid(crampwatch.SERVICE_UUID), [data, control, info]), self.battery_service()]

    def on_command(self, command: bytes) -> None:
        if command == crampwatch.CMD_START:
            # The sensor samples continuously: after an outage its indices (and clock) have moved on.
            now = asyncio.get_running_loop().time()
            if not self.boot:
                self.boot = now - 10.0
            self.emg_index = max(self.emg_index, int((now - self.boot) * self.info.emg_rate_hz))
            self.acc_index = max(self.acc_index, int((now - self.boot) * self.info.acc_rate_hz))
            self.start_streaming()
        elif command == crampwatch.CMD_STOP:
            self.stop_streaming()

    @staticmethod
    def emg_value(index: int) -> tuple[int, int]:
        return index % 20000, -(index % 20000)

    def _packet(self, kind: int, index: int, n: int, rate: int, rows: Sequence[Sequence[int]]) -> bytes:
        t0_us = int(index * 1e6 / rate) % (1 << 32)
        seq = self.seq[kind]
        self.seq[kind] = (seq + 1) % (1 << 16)
        flat = [v for row in rows for v in row]
        return struct.pack("<BBHI", kind, n, seq, t0_us) + struct.pack(f"<{len(flat)}h", *flat)

    def ticks(self) -> Iterator[list[tuple[str, bytes]]]:
        n_emg = round(self.info.emg_rate_hz * self.period_s)
        n_acc = round(self.info.acc_rate_hz * self.period_s)
        while True:
            emg_rows = [self.emg_value(i) for i in range(self.emg_index, self.emg_index + n_emg)]
            acc_rows = [(i % 1000, 0, 1024) for i in range(self.acc_index, self.acc_index + n_acc)]
            packets = [
                (
                    crampwatch.DATA_UUID,
                    self._packet(crampwatch.TYPE_EMG, self.emg_index, n_emg, self.info.emg_rate_hz, emg_rows),
                ),
                (
                    crampwatch.DATA_UUID,
                    self._packet(crampwatch.TYPE_ACC, self.acc_index, n_acc, self.info.acc_rate_hz, acc_rows),
                ),
            ]
            self.emg_index += n_emg
            self.acc_index += n_acc
            yield packets


class FakeGanglion(FakePeripheral):
    """OpenBCI Ganglion, firmware 3: resets on connect, streams 18-bit packets + accelerometer after ``n``/``b``."""

    local_name = "Ganglion-4a1f"
    service_uuid = ganglion.SERVICE_UUID
    period_s = 0.05  # 5 packets (10 samples) per tick: 100 packets/s

    def __init__(self, radio: VirtualRadio) -> None:
        super().__init__(radio)
        self.accel = False
        self.packet_id = 0
        self.sample_index = 0
        self.resets = 0

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.local_name.encode()),
                    (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, UUID.from_16_bits(0xFE84).to_bytes()),
                ]
            )
        )

    def services(self) -> list[Service]:
        notify = self.data_characteristic(ganglion.NOTIFY_UUID)
        write = self.command_characteristic(ganglion.WRITE_UUID, WRITE_NR | WRITE)
        disconnect = self.command_characteristic(ganglion.DISCONNECT_UUID, WRITE_NR)
        info = Service(
            _uuid(DEVICE_INFO_SERVICE),
            [Characteristic(_uuid(SOFTWARE_REVISION), READ, Characteristic.READABLE, b"3.1.2")],
        )
        return [Service(UUID.from_16_bits(0xFE84), [notify, write, disconnect]), info, self.battery_service()]

    def on_connect(self) -> None:
        # The board resets when a connection opens (Ganglion data format, "Startup").
        self.resets += 1
        self.stop_streaming()
        self.accel = False
        self.packet_id = 0

    def on_command(self, command: bytes) -> None:
        if command == b"b":
            self.start_streaming()
        elif command == b"s":
            self.stop_streaming()
        elif command == b"n":
            self.accel = True
        elif command == b"N":
            self.accel = False

    @staticmethod
    def field_value(index: int, channel: int) -> int:
        """Field values follow the firmware's sign rule: positives even, negatives odd."""
        k = index % 1000
        return 2 * k if channel % 2 == 0 else -(2 * k + 1)

    def _packet(self) -> bytes:
        bits = 18 if self.accel else 19
        pid = self.packet_id % 100 + (0 if self.accel else 100)
        fields = [self.field_value(self.sample_index + s, c) for s in range(2) for c in range(4)]
        value = 0
        for f in fields:
            value = (value << bits) | (f & ((1 << bits) - 1))
        n_bits = 18 * 8 if self.accel else 19 * 8
        value <<= n_bits - bits * 8
        payload = bytes([pid]) + value.to_bytes(n_bits // 8, "big")
        if self.accel:
            payload += bytes([{2: 3, 1: 2, 0: (-64) & 0xFF}.get(pid % 10, 0)])
        self.packet_id += 1
        self.sample_index += 2
        return payload

    def ticks(self) -> Iterator[list[tuple[str, bytes]]]:
        while True:
            yield [(ganglion.NOTIFY_UUID, self._packet()) for _ in range(5)]


class FakeMyo(FakePeripheral):
    """Thalmic Myo: 4 EMG characteristics in turn (2 samples x 8 ch each) and the IMU, after set_mode."""

    local_name = "Myo"
    service_uuid = myo.CONTROL_SERVICE_UUID

    def __init__(self, radio: VirtualRadio) -> None:
        super().__init__(radio)
        self.sample_index = 0
        self.imu_index = 0
        self.turn = 0
        self.never_sleep = False

    def services(self) -> list[Service]:
        command = self.command_characteristic(myo.COMMAND_UUID, WRITE)
        emg = [self.data_characteristic(u) for u in myo.EMG_UUIDS]
        imu = self.data_characteristic(myo.IMU_UUID)
        return [
            Service(_uuid(myo.CONTROL_SERVICE_UUID), [command]),
            Service(_uuid(myo.IMU_SERVICE_UUID), [imu]),
            Service(_uuid(myo.EMG_SERVICE_UUID), emg),
            self.battery_service(),
        ]

    def on_command(self, command: bytes) -> None:
        if command == myo.NEVER_SLEEP:
            self.never_sleep = True
        elif command[:2] == b"\x01\x03":
            if command[2] in (0x02, 0x03):
                self.start_streaming()
            else:
                self.stop_streaming()

    def ticks(self) -> Iterator[list[tuple[str, bytes]]]:
        while True:  # 40 ms: 8 EMG samples (4 notifications) and 2 IMU readings
            packets = []
            for _ in range(4):
                rows = [[(self.sample_index + s) % 128] * 8 for s in range(2)]
                packets.append((myo.EMG_UUIDS[self.turn], bytes(v & 0xFF for row in rows for v in row)))
                self.turn = (self.turn + 1) % 4
                self.sample_index += 2
            for _ in range(2):
                imu = struct.pack("<4h3h3h", 16384, 0, 0, 0, self.imu_index % 100, 0, 2048, 0, 0, 0)
                packets.append((myo.IMU_UUID, imu))
                self.imu_index += 1
            yield packets


class FakePolar(FakePeripheral):
    """Polar H10 PMD: control point replies by indication; ACC frames (16-bit mG) with ns timestamps."""

    local_name = "Polar H10 5A3B2C1D"
    service_uuid = polar.SERVICE_UUID
    period_s = 0.04  # 8 samples at 200 Hz per frame

    def __init__(self, radio: VirtualRadio) -> None:
        super().__init__(radio)
        self.sample_index = 0
        self.clock_ns = 600_000_000_000_000_000  # ns since 2000-01-01
        self.replies: list[bytes] = []
        self.control: Characteristic[Any] | None = None

    def services(self) -> list[Service]:
        def on_write(connection: Any, value: bytes) -> None:
            self.on_command(bytes(value))

        self.control = Characteristic(
            _uuid(polar.CONTROL_UUID),
            READ | WRITE | INDICATE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=lambda connection: b"\x0f\x05", write=on_write),
        )
        self.data_characteristic(polar.DATA_UUID)
        self.data_chars[polar.CONTROL_UUID] = self.control
        self.control.on(self.control.EVENT_SUBSCRIPTION, lambda c, n, i: self.subscribed.add(polar.CONTROL_UUID))
        return [
            Service(_uuid(polar.SERVICE_UUID), [self.control, self.data_chars[polar.DATA_UUID]]),
            self.battery_service(),
        ]

    def on_command(self, command: bytes) -> None:
        op, meas = command[0], command[1]
        error = 0 if (meas == polar.MEAS_ACC and command == polar.START_ACC) or op == 0x03 else 5
        reply = bytes([0xF0, op, meas, error, 0])
        self.replies.append(reply)
        assert self.control is not None
        asyncio.get_running_loop().create_task(self.device.indicate_subscribers(self.control, reply))
        if op == 0x02 and error == 0:
            self.start_streaming()
        elif op == 0x03:
            self.stop_streaming()

    def ticks(self) -> Iterator[list[tuple[str, bytes]]]:
        n = 8
        while True:
            rows = [((self.sample_index + i) % 1000, -500, 1000) for i in range(n)]
            self.sample_index += n
            self.clock_ns += n * 5_000_000
            last_ns = self.clock_ns - 5_000_000  # the frame's timestamp is its last sample's
            payload = b"".join(struct.pack("<3h", *row) for row in rows)
            yield [(polar.DATA_UUID, bytes([polar.MEAS_ACC]) + last_ns.to_bytes(8, "little") + b"\x01" + payload)]


class FakeBitalino(FakePeripheral):
    """BITalino BLE: A1-A4 at 1000 Hz as 7-byte CRC4 frames cut into 20-byte notifications (a byte stream)."""

    local_name = "BITalino BLE"
    service_uuid = bitalino.SERVICE_UUID

    def __init__(self, radio: VirtualRadio) -> None:
        super().__init__(radio)
        self.rate_hz = 0
        self.frame_index = 0
        self._pending = b""

    def services(self) -> list[Service]:
        frames = self.data_characteristic(bitalino.FRAMES_UUID)
        commands = self.command_characteristic(bitalino.COMMANDS_UUID, WRITE | WRITE_NR)
        return [Service(_uuid(bitalino.SERVICE_UUID), [commands, frames])]

    def on_command(self, command: bytes) -> None:
        byte = command[0]
        if byte & 0x03 == 0x03:
            self.rate_hz = {0: 1, 1: 10, 2: 100, 3: 1000}[byte >> 6]
        elif byte & 0x03 == 0x01 and self.rate_hz == 1000 and byte >> 2 == 0b1111:
            self.start_streaming()
        elif byte == 0x00:
            self.stop_streaming()

    @staticmethod
    def a1(index: int) -> int:
        return index % 1024

    def _frame(self) -> bytes:
        a = [self.a1(self.frame_index), 1023 - self.a1(self.frame_index), 512, 0]
        b = bytearray(7)
        b[5] = (a[0] >> 6) & 0x0F
        b[4] = ((a[0] & 0x3F) << 2) | ((a[1] >> 8) & 0x03)
        b[3] = a[1] & 0xFF
        b[2] = a[2] >> 2
        b[1] = ((a[2] & 0x03) << 6) | ((a[3] >> 4) & 0x3F)
        b[0] = (a[3] & 0x0F) << 4
        b[6] = (self.frame_index % 16) << 4
        b[6] |= bitalino.crc4(bytes(b))
        self.frame_index += 1
        return bytes(b)

    def ticks(self) -> Iterator[list[tuple[str, bytes]]]:
        while True:  # 40 ms = 40 frames = 280 bytes = 14 notifications of 20 bytes
            stream = self._pending + b"".join(self._frame() for _ in range(40))
            cut = len(stream) - len(stream) % 20
            self._pending = stream[cut:]
            yield [(bitalino.FRAMES_UUID, stream[i : i + 20]) for i in range(0, cut, 20)]
