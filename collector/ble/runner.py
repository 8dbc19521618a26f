"""The BLE runner: keeps one wearable streaming all night, whatever the radio does.

bleak has no automatic reconnect (bleak #82, #121), so this module owns the outer loop (devices.md §3)::

    scan (BleakScanner.find_device_by_filter) -> connect with the fresh BLEDevice (never a bare address,
    bleak #377) -> read info -> subscribe to every data characteristic -> THEN send the start command
    (bleak #374) -> stream -> [disconnect callback | silence watchdog | stop] -> clean up ->
    capped, jittered exponential backoff -> scan again ... (re-subscribe and re-send start every time)

Rules it follows and why:

* **Callbacks only enqueue.** bleak calls notification callbacks on the event loop; ours stamp the host
  time and ``put_nowait`` the bytes into a bounded queue (a full queue drops and counts, never blocks).
  One worker task decodes, frames and publishes, in order.
* **Connection generations.** Every connection attempt gets a new number; callbacks and queued items of a
  superseded client (late notifications, a late ``disconnected_callback``) are counted and ignored.
* **Silence watchdog.** BlueZ can report a connection as up while no data flows (bleak-retry-connector
  #228): no notification for ``silence_s`` while connected forces a disconnect and a reconnect.
* **No stop_notify after an unsolicited disconnect** (it only logs errors, bleak #472); we just
  disconnect, yield to the loop once (bleak-retry-connector #14), back off and start over.
* **Gaps are data.** Device-side losses (from the decoders' counters) and reconnect outages reach the
  detector as skipped frame sequence numbers (see :mod:`collector.ble.framer`) and are counted here.

Frames go to a :class:`FrameSink`: in ``cramp-collector run`` the hand-off of
:class:`~collector.ble.source.BleSource` to the source loop, which spools them in the
:class:`~collector.publisher.FramePublisher` (whose durable spool makes broker outages and collector
restarts lossless); in tests the publisher itself. The frame numbering continues from what the spool
remembers.

Testing seam: ``backend=BleakBackend(scanner=..., client=...)`` is passed to ``BleakScanner`` /
``BleakClient`` as their public ``backend=`` argument; ``None`` (the default) is the platform's backend
(BlueZ over D-Bus on Linux). The tests run this code unchanged over a bumble virtual radio.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakError

from crampwatch.errors import CrampWatchError
from crampwatch.frames import Frame, StreamKind

from .errors import AdapterMissingError, ProtocolError
from .framer import Framer
from .profile import Decoder, DeviceProfile, StreamSpec

log = logging.getLogger(__name__)

#: Log "still not found" / "still disconnected" at most this often (a night of retries must stay readable).
NAG_INTERVAL_S: Final = 180.0
CLEANUP_TIMEOUT_S: Final = 5.0


class FrameSink(Protocol):
    """Where the runner's frames go (a :class:`~collector.publisher.FramePublisher` is one)."""

    def next_seq(self, kind: StreamKind) -> int:
        """The sequence number that continues the stream ``kind`` (from the spool, across restarts)."""
        ...

    def publish(self, frame: Frame) -> None:
        """Take one frame; may block (the runner calls it off the event loop)."""
        ...


@dataclass(frozen=True, slots=True)
class BleakBackend:
    """The bleak backend classes; ``None`` = the platform's own (tests pass a bumble-based pair)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with "equal jitter": delay in [d/2, d], d = min(max, initial x factor^n)."""

    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_s, self.initial_s * self.factor ** min(attempt, 32))
        return ceiling * (0.5 + 0.5 * rng.random())


class LinkState(enum.StrEnum):
    SEARCHING = "searching"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass
class RunnerStats:
    """Everything the status topic and the logs report about the link. Times are ``time.time()``."""

    state: LinkState = LinkState.SEARCHING
    address: str | None = None
    rssi: int | None = None
    battery_pct: int | None = None
    connections: int = 0
    disconnects: int = 0
    watchdog_resets: int = 0
    failed_attempts: int = 0
    notifications: int = 0
    queue_drops: int = 0
    stale_callbacks: int = 0
    decoder_malformed: int = 0
    device_gaps: int = 0
    device_lost_samples: dict[StreamKind, int] = field(default_factory=dict)
    samples: dict[StreamKind, int] = field(default_factory=dict)
    frames: dict[StreamKind, int] = field(default_factory=dict)
    connected_since: float | None = None
    disconnected_since: float | None = None
    last_data: float | None = None


@dataclass(frozen=True, slots=True)
class _Notification:
    generation: int
    uuid: str
    host_ns: int
    data: bytes


@dataclass(frozen=True, slots=True)
class _Connected:
    generation: int
    info: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class _Disconnected:
    generation: int


_Item = _Notification | _Connected | _Disconnected


class BleRunner:
    """Streams one wearable into a frame sink until stopped; see the module docstring.

    Args:
        profile: what device this is.
        sink: where frames go, and where the frame numbering continues from.
        address: connect only to this Bluetooth address; default any device matching the profile.
        backend: bleak backend injection point (tests); default the platform's.
        frame_s: seconds of samples per published frame.
        silence_s: watchdog limit; default the profile's.
        backoff: reconnect backoff policy.
        scan_timeout_s: how long one scan looks for the device.
        queue_size: notifications buffered between the callbacks and the worker.
        on_event: called with a short event name ("connected", "disconnected", "watchdog", ...) after
            each state change, for telemetry.
    """

    def __init__(
        self,
        profile: DeviceProfile,
        sink: FrameSink,
        *,
        address: str | None = None,
        backend: BleakBackend | None = None,
        frame_s: float = 0.25,
        silence_s: float | None = None,
        backoff: Backoff | None = None,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 20.0,
        queue_size: int = 4096,
        rng: random.Random | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.profile = profile
        self.sink = sink
        self.address = address
        self.backend = backend or BleakBackend()
        self.frame_s = frame_s
        self.silence_s = silence_s if silence_s is not None else profile.silence_s
        self.backoff = backoff or Backoff()
        self.scan_timeout_s = scan_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.stats = RunnerStats()
        self.decoder: Decoder = profile.decoder()
        self.framers: dict[StreamKind, Framer] = {}
        self.streams: tuple[StreamSpec, ...] = profile.streams
        self._rng = rng or random.Random()
        self._on_event = on_event
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(queue_size)
        self._generation = 0
        self._active: int | None = None  # generation whose callbacks are accepted
        self._last_rx = 0.0  # loop time of the last notification of the active connection
        self._last_nag = 0.0

    # -- the outer loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None, *, duration_s: float | None = None) -> RunnerStats:
        """Stream until ``stop`` is set or ``duration_s`` has passed; then flush the framers.

        With ``duration_s`` the last frames carry the end-of-stream flag (the night is over); when stopped
        by ``stop`` they do not, so a restarted collector continues the same night.
        """
        stop = stop or asyncio.Event()
        ended: list[bool] = []

        def night_over() -> None:
            ended.append(True)
            stop.set()

        timer = asyncio.get_running_loop().call_later(duration_s, night_over) if duration_s else None
        worker = asyncio.create_task(self._work(), name="ble-worker")
        attempt = 0
        first_scan = True
        try:
            while not stop.is_set():
                device = await self._find(first_scan)
                first_scan = False
                if device is not None and not stop.is_set():
                    streamed = await self._attempt(device, stop)
                    attempt = 0 if streamed else attempt + 1
                else:
                    attempt += 1
                if stop.is_set():
                    break
                await asyncio.sleep(0)  # let bleak finish its own disconnect handling first
                delay = self.backoff.delay(attempt, self._rng)
                self._set_state(LinkState.BACKOFF, "backoff")
                log.debug("%s: next attempt in %.1f s", self.profile.name, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            if timer is not None:
                timer.cancel()
            await self._queue.put(None)
            await worker
            self._set_state(LinkState.STOPPED, "stopped")
            await asyncio.to_thread(self._flush_framers, bool(ended))
        return self.stats

    async def _find(self, first: bool) -> BLEDevice | None:
        self._set_state(LinkState.SEARCHING, "searching")
        found: dict[str, int] = {}

        def wanted(device: BLEDevice, adv: AdvertisementData) -> bool:
            if self.address is not None:
                ok = device.address.upper() == self.address.upper()
            else:
                ok = self.profile.matches(adv.local_name or device.name, adv.service_uuids)
            if ok:
                found[device.address] = adv.rssi
            return ok

        try:
            if self.backend.scanner is None:
                device = await BleakScanner.find_device_by_filter(wanted, timeout=self.scan_timeout_s)
            else:
                device = await BleakScanner.find_device_by_filter(
                    wanted, timeout=self.scan_timeout_s, backend=self.backend.scanner
                )
        except (BleakBluetoothNotAvailableError, OSError) as err:
            if first:
                raise AdapterMissingError(adapter_problem(err)) from None
            log.error("Bluetooth adapter unavailable (%s); retrying. Is the adapter still plugged in?", err)
            return None
        except BleakError as err:
            log.warning("%s: scan failed (%s); retrying", self.profile.name, err)
            return None
        if device is None:
            self._nag(f"{self.profile.title} not found")
            return None
        self.stats.rssi = found.get(device.address)
        return device

    def _nag(self, what: str) -> None:
        since = self.stats.disconnected_since
        now = time.time()
        if since is None:
            self.stats.disconnected_since = since = now
        if now - self._last_nag < NAG_INTERVAL_S and self._last_nag:
            return
        self._last_nag = now
        minutes = (now - since) / 60
        where = f" ({self.address})" if self.address else ""
        log.warning(
            "%s%s for %.0f min: is it switched on, charged, worn, and within a few metres of this computer? "
            "Still trying.",
            what,
            where,
            minutes,
        )

    # -- one connection ----------------------------------------------------------------------------

    async def _attempt(self, device: BLEDevice, stop: asyncio.Event) -> bool:
        """Connect, stream until the link ends; True if data was received (resets the backoff)."""
        self._generation += 1
        generation = self._generation
        self._active = generation
        received_before = self.stats.notifications
        lost = asyncio.Event()

        def on_disconnect(_: BleakClient) -> None:
            if generation != self._active:
                self.stats.stale_callbacks += 1  # a superseded client reporting late
                return
            lost.set()

        self._set_state(LinkState.CONNECTING, "connecting")
        client = BleakClient(
            device, disconnected_callback=on_disconnect, timeout=self.connect_timeout_s, backend=self.backend.client
        )
        reason = "failed"
        try:
            await client.connect()
            reason = await self._stream(client, generation, lost, stop)
        except (BleakError, TimeoutError, OSError, ProtocolError) as err:
            self.stats.failed_attempts += 1
            log.warning("%s %s: connection attempt failed: %s", self.profile.title, device.address, err or repr(err))
        finally:
            self._active = None  # from here on, this client's callbacks are stale
            await self._cleanup(client, clean=reason == "stopped")
            if reason != "stopped":  # when stopping, run() flushes the framers itself (with end of stream)
                await self._queue.put(_Disconnected(generation))
            if reason != "failed":
                self.stats.disconnects += 1
                if self.stats.connected_since is not None:
                    self.stats.disconnected_since = time.time()
                    self._last_nag = 0.0
                self.stats.connected_since = None
                self._set_state(LinkState.BACKOFF, reason)
        return self.stats.notifications > received_before

    async def _stream(self, client: BleakClient, generation: int, lost: asyncio.Event, stop: asyncio.Event) -> str:
        if client.services.get_service(self.profile.service_uuid) is None:
            raise ProtocolError(
                f"{client.address} has no {self.profile.title} service ({self.profile.service_uuid}); "
                "is --profile naming the right profile and address?"
            )
        info: dict[str, bytes] = {}
        for uuid in self.profile.read_on_connect:
            if client.services.get_characteristic(uuid) is not None:
                info[uuid] = bytes(await client.read_gatt_char(uuid))
        await self._read_battery(client)
        # The worker resets the decoder (devices reset on connect) before any of this link's data.
        await self._queue.put(_Connected(generation, info))
        for uuid in self.profile.notify:  # subscribe BEFORE the start command (bleak #374)
            await client.start_notify(uuid, self._callback(generation, uuid))
        for write in self.profile.start:
            await client.write_gatt_char(write.char_uuid, write.data, response=write.response)
            if write.pause_s:
                await asyncio.sleep(write.pause_s)
        loop = asyncio.get_running_loop()
        self._last_rx = loop.time()
        self.stats.connections += 1
        self.stats.address = client.address
        outage = time.time() - self.stats.disconnected_since if self.stats.disconnected_since else None
        self.stats.connected_since = time.time()
        self.stats.disconnected_since = None
        self._set_state(LinkState.STREAMING, "connected")
        log.info(
            "%s %s connected and streaming%s",
            self.profile.title,
            client.address,
            f" again after {outage:.1f} s without data" if outage else "",
        )
        next_keepalive = loop.time() + self.profile.keepalive_s
        while True:
            now = loop.time()
            if stop.is_set():
                return "stopped"
            if lost.is_set():
                log.warning("%s %s: connection lost; reconnecting", self.profile.title, client.address)
                return "disconnected"
            if now - self._last_rx > self.silence_s:
                self.stats.watchdog_resets += 1
                log.warning(
                    "%s %s: connected but no data for %.0f s; forcing a reconnect",
                    self.profile.title,
                    client.address,
                    now - self._last_rx,
                )
                return "watchdog"
            if self.profile.keepalive is not None and now >= next_keepalive:
                write = self.profile.keepalive
                await client.write_gatt_char(write.char_uuid, write.data, response=write.response)
                next_keepalive = now + self.profile.keepalive_s
            wake = min(self._last_rx + self.silence_s, next_keepalive) - now
            await _wait_any((lost, stop), max(0.01, min(wake, 1.0)))

    async def _read_battery(self, client: BleakClient) -> None:
        uuid = self.profile.battery_uuid
        if uuid is None or client.services.get_characteristic(uuid) is None:
            return
        try:
            value = await client.read_gatt_char(uuid)
        except BleakError as err:
            log.debug("battery read failed: %s", err)
            return
        if value:
            self.stats.battery_pct = int(value[0])
            if self.stats.battery_pct <= 15:
                log.warning("%s battery at %d %%: charge it before the night", self.profile.title, value[0])

    async def _cleanup(self, client: BleakClient, *, clean: bool) -> None:
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT_S):
                if clean and client.is_connected:
                    for write in self.profile.stop:  # polite stop on shutdown; never after a lost link
                        await client.write_gatt_char(write.char_uuid, write.data, response=write.response)
                await client.disconnect()
        except (BleakError, TimeoutError, OSError) as err:
            log.debug("%s: cleanup after the link ended: %s", self.profile.name, err)
        await asyncio.sleep(0)

    # -- callbacks (event loop): only enqueue ------------------------------------------------------

    def _callback(self, generation: int, uuid: str) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        loop = asyncio.get_running_loop()

        def on_notify(_: BleakGATTCharacteristic, data: bytearray) -> None:
            if generation != self._active:
                if generation != self._generation:
                    self.stats.stale_callbacks += 1  # from a superseded client
                return  # (or this link is being torn down: its last notifications are not wanted)
            self._last_rx = loop.time()
            self.stats.notifications += 1
            try:
                self._queue.put_nowait(_Notification(generation, uuid, time.time_ns(), bytes(data)))
            except asyncio.QueueFull:
                self.stats.queue_drops += 1

        return on_notify

    # -- the worker: decode, frame, publish, in order ----------------------------------------------

    async def _work(self) -> None:
        current = 0
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, _Connected):
                current = item.generation
                frames = self._start_connection(item.info)
            elif isinstance(item, _Disconnected):
                frames = [f for framer in self.framers.values() for f in framer.reconnected()]
            elif item.generation != current:
                self.stats.stale_callbacks += 1
                continue
            else:
                frames = self._decode(item.uuid, item.host_ns, item.data)
            if frames:
                await asyncio.to_thread(self._publish, frames)

    def _start_connection(self, info: dict[str, bytes]) -> list[Frame]:
        frames: list[Frame] = []
        specs = self.decoder.start(info)
        for spec in specs:
            framer = self.framers.get(spec.kind)
            if framer is not None and framer.spec == spec:
                continue
            if framer is not None:
                log.warning("%s stream changed to %s; continuing with the new layout", spec.kind, spec)
                frames += framer.flush()
            self.framers[spec.kind] = Framer(
                spec,
                first_seq=self.sink.next_seq(spec.kind) if framer is None else framer.next_seq + 1,
                frame_s=self.frame_s,
            )
        self.streams = specs
        return frames

    def _decode(self, uuid: str, host_ns: int, payload: bytes) -> list[Frame]:
        before_gaps = self.decoder.stats.gaps
        blocks = self.decoder.feed(uuid, payload)
        self.stats.decoder_malformed = self.decoder.stats.malformed
        if self.decoder.stats.gaps != before_gaps:
            self.stats.device_gaps = self.decoder.stats.gaps
            self.stats.device_lost_samples = dict(self.decoder.stats.lost_samples)
            log.info("%s: device reports lost samples %s", self.profile.name, self.stats.device_lost_samples)
        frames: list[Frame] = []
        for block in blocks:
            framer = self.framers.get(block.kind)
            if framer is None:
                continue
            self.stats.samples[block.kind] = self.stats.samples.get(block.kind, 0) + int(block.data.shape[0])
            frames += framer.push(block, host_ns)
        if blocks:
            self.stats.last_data = time.time()
        return frames

    def _publish(self, frames: list[Frame]) -> None:
        for frame in frames:
            try:
                self.sink.publish(frame)
            except CrampWatchError as err:  # the night goes on without the frame (the publisher counts it)
                log.error("could not store frame %s seq %d: %s", frame.kind, frame.seq, err)
                continue
            self.stats.frames[frame.kind] = self.stats.frames.get(frame.kind, 0) + 1

    def _flush_framers(self, end_of_stream: bool) -> None:
        self._publish([f for framer in self.framers.values() for f in framer.flush(end_of_stream=end_of_stream)])

    def _set_state(self, state: LinkState, event: str) -> None:
        self.stats.state = state
        if self._on_event is not None:
            self._on_event(event)


def adapter_problem(err: Exception) -> str:
    """Why bleak could not use Bluetooth, in words (a missing D-Bus socket raises a bare FileNotFoundError)."""
    if isinstance(err, FileNotFoundError | ConnectionRefusedError):
        return "the system D-Bus is not reachable, so BlueZ (the Linux Bluetooth service) is not running"
    return str(err) or type(err).__name__


async def _wait_any(events: tuple[asyncio.Event, ...], timeout: float) -> None:
    """Return when any event is set or after ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
