"""``cramp-detector serve``: frames from MQTT -> one pipeline per device -> sinks.

paho's network thread only enqueues (topic, payload); one worker thread decodes, runs the pipelines and
writes the sinks, so a slow sink never blocks the network loop and the order of each stream is kept.
A malformed frame or a stream with unusable units is logged with its reason and skipped; the service and
the other streams go on.

For dashboards and alerts the worker also writes, to InfluxDB sinks, a heartbeat per recording device every
``heartbeat_s`` of wall time (data received or not, seconds silent, lag, rejected frames), and each collector
status message it receives on ``<prefix>/+/+/status`` (battery, RSSI, spool backlog, losses).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from crampwatch import wire
from crampwatch.errors import BrokerError, FrameError, SinkError, StreamError
from crampwatch.mqtt import connect, make_client
from crampwatch.topics import StreamTopic, data_subscriptions, status_topic

from .config import DetectorSettings
from .events import Event, Heartbeat
from .model import Model
from .sinks import DeadLetterFile, InfluxSink, JsonlSink, MqttEventSink, Sink, SinkSet
from .sinks.mqtt import dead_letter_publisher
from .stream import DeviceStreams

log = logging.getLogger(__name__)

#: A device silent this long is no longer "recording": its heartbeats stop.
RECORDING_GIVE_UP_S = 12 * 3600


@dataclass
class ServiceStats:
    messages: int = 0
    rejected_frames: int = 0
    events: int = 0
    finished_devices: set[tuple[str, str]] = field(default_factory=set)


class DetectorService:
    def __init__(
        self, settings: DetectorSettings, model: Model, *, sinks: list[Sink] | None = None, heartbeat_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.heartbeat_s = heartbeat_s
        self._last_data: dict[tuple[str, str], float] = {}  # wall time of the last frame per device
        self._newest_ns: dict[tuple[str, str], int] = {}  # device time of the newest summary
        self._rejected: dict[tuple[str, str], int] = {}
        self._beat_data: set[tuple[str, str]] = set()  # devices that sent data since the last beat
        self.model = model
        self.stats = ServiceStats()
        self.devices: dict[tuple[str, str], DeviceStreams] = {}
        self.events_log: deque[Event] = deque(maxlen=10_000)  # recent events, for the demo and tests
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._subscribed = threading.Event()
        self.client = make_client(settings.mqtt_url, settings.client_id, session_expiry_s=settings.session_expiry_s)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        # With event publishing on, dead letters are also published, so an alert can fire when one happens.
        mirror = dead_letter_publisher(self.client, settings.topic_prefix) if settings.publish_events else None
        self.sinks = SinkSet(
            sinks if sinks is not None else self._default_sinks(),
            dead_letter=DeadLetterFile(settings.dead_letter_file, mirror=mirror),
        )

    def _default_sinks(self) -> list[Sink]:
        s = self.settings
        sinks: list[Sink] = []
        if s.influx_url:
            sinks.append(InfluxSink(s.influx_url, s.influx_token, s.influx_org, s.influx_bucket))
        else:
            log.info("no InfluxDB configured (--influx-url); writing events to %s", s.events_file)
            sinks.append(JsonlSink(s.events_file))
        if s.publish_events:
            sinks.append(MqttEventSink(self.client, s.topic_prefix))
        return sinks

    # -- MQTT callbacks (paho's thread): only enqueue ----------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            return
        topics = [*data_subscriptions(self.settings.topic_prefix), status_topic(self.settings.topic_prefix, "+", "+")]
        client.subscribe([(topic, 1) for topic in topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic, bytes(msg.payload)))

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Connect, wait until the broker confirms the subscriptions, and start the worker thread.

        Until the SUBACK, a frame published on a fresh session would be dropped by the broker, so a
        service that returned earlier could miss the first frames sent right after it started.
        """
        connect(self.client)
        if not self._subscribed.wait(10):
            self.client.loop_stop()
            topics = ", ".join(data_subscriptions(self.settings.topic_prefix))
            raise BrokerError(f"the broker did not confirm the subscription to {topics} within 10 s")
        worker = threading.Thread(target=self._work, name="detector-worker", daemon=True)
        worker.start()
        return worker

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.sinks.close()

    def run_forever(self) -> None:
        worker = self.start()
        try:
            while worker.is_alive():
                worker.join(0.5)
        except KeyboardInterrupt:
            log.info("stopping")
        finally:
            self.stop()
            worker.join(10)
            self.close()

    def wait_finished(self, devices: set[tuple[str, str]], timeout_s: float) -> bool:
        """Block until every (patient, device) in ``devices`` has ended its streams (demo and tests)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while not devices <= self.stats.finished_devices:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    # -- worker ------------------------------------------------------------------------------------

    def _work(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_s
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=max(0.0, next_beat - time.monotonic()))
            except queue.Empty:
                pass
            else:
                if item is None:
                    break
                self.handle(*item)
            if time.monotonic() >= next_beat:
                self.beat()
                next_beat = time.monotonic() + self.heartbeat_s

    def _influx_sinks(self) -> list[InfluxSink]:
        return [sink for sink in self.sinks.sinks if isinstance(sink, InfluxSink)]

    def beat(self) -> list[Heartbeat]:
        """Write one heartbeat per recording device (public so tests can drive it); not retried."""
        now = time.time()
        beats = []
        for key in self.devices:
            last = self._last_data.get(key, now)
            if now - last > RECORDING_GIVE_UP_S:
                continue
            newest = self._newest_ns.get(key)
            beats.append(
                Heartbeat(
                    patient=key[0],
                    device=key[1],
                    time_ns=time.time_ns(),
                    data_received=key in self._beat_data,
                    silent_s=round(now - last, 1),
                    lag_s=round(now - newest / 1e9, 1) if newest is not None else 0.0,
                    rejected_frames=self._rejected.get(key, 0),
                )
            )
        self._beat_data.clear()
        if beats:
            for sink in self._influx_sinks():
                try:
                    sink.write_heartbeats(beats)
                except SinkError as err:
                    log.warning("heartbeat not written: %s", err)
        return beats

    def _on_status(self, patient: str, device: str, payload: bytes) -> None:
        try:
            status = json.loads(payload)
            if not isinstance(status, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            log.warning("ignored status of %s/%s: %s", patient, device, err)
            return
        for sink in self._influx_sinks():
            try:
                sink.write_device_status(patient, device, status, time.time_ns())
            except SinkError as err:
                log.warning("device status not written: %s", err)

    def handle(self, topic: str, payload: bytes) -> None:
        """Process one MQTT message (public so tests can drive it directly)."""
        self.stats.messages += 1
        prefix = self.settings.topic_prefix
        parts = topic[len(prefix) + 1 :].split("/") if topic.startswith(prefix + "/") else []
        if len(parts) == 3 and parts[2] == "status":
            self._on_status(parts[0], parts[1], payload)
            return
        stream = StreamTopic.parse(topic, prefix)
        if stream is None:
            return
        try:
            frame = wire.decode(payload)
            if frame.kind is not stream.kind:
                raise FrameError(f"frame says {frame.kind} but topic says {stream.kind}", topic=topic)
        except FrameError as err:
            self.stats.rejected_frames += 1
            self._count_rejected((stream.patient, stream.device))
            log.warning("rejected frame on %s: %s", topic, err.reason)
            return
        key = (stream.patient, stream.device)
        self._last_data[key] = time.time()
        self._beat_data.add(key)
        device = self.devices.get(key)
        if device is None:
            device = self.devices[key] = DeviceStreams(self.model, stream.patient, stream.device)
            log.info("new stream from patient %s device %s", *key)
        try:
            out = device.on_frame(frame)
        except StreamError as err:
            self.stats.rejected_frames += 1
            self._count_rejected(key)
            log.warning("rejected frame on %s: %s", topic, err)
            return
        if out.summaries:
            self._newest_ns[key] = max(s.time_ns for s in out.summaries)
        for event in out.events:
            log.info(
                "%s %s/%s at %.1f s for %.1f s (confidence %.2f, peak %.0f uV)",
                event.type,
                event.patient,
                event.device,
                event.onset_s,
                event.duration_s,
                event.confidence,
                event.peak_uv,
            )
        if out.events or out.summaries:
            self.sinks.write(out.events, out.summaries)
            self.stats.events += len(out.events)
            self.events_log.extend(out.events)
        if device.finished:
            self.devices.pop(key, None)
            for table in (self._last_data, self._newest_ns, self._rejected):
                table.pop(key, None)
            with self._idle:
                self.stats.finished_devices.add(key)
                self._idle.notify_all()

    def _count_rejected(self, key: tuple[str, str]) -> None:
        self._rejected[key] = self._rejected.get(key, 0) + 1
