"""``cramp-detector serve``: frames from MQTT -> one pipeline per device -> sinks.

paho's network thread only enqueues (topic, payload); one worker thread decodes, runs the pipelines and
writes the sinks, so a slow sink never blocks the network loop and the order of each stream is kept.
A malformed frame or a stream with unusable units is logged with its reason and skipped; the service and
the other streams go on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from crampwatch import wire
from crampwatch.errors import BrokerError, FrameError, StreamError
from crampwatch.mqtt import connect, make_client
from crampwatch.topics import StreamTopic, data_subscriptions

from .config import DetectorSettings
from .events import Event
from .model import Model
from .sinks import DeadLetterFile, InfluxSink, JsonlSink, MqttEventSink, Sink, SinkSet
from .sinks.mqtt import dead_letter_publisher
from .stream import DeviceStreams

log = logging.getLogger(__name__)


@dataclass
class ServiceStats:
    messages: int = 0
    rejected_frames: int = 0
    events: int = 0
    finished_devices: set[tuple[str, str]] = field(default_factory=set)


class DetectorService:
    def __init__(self, settings: DetectorSettings, model: Model, *, sinks: list[Sink] | None = None) -> None:
        self.settings = settings
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
        client.subscribe([(topic, 1) for topic in data_subscriptions(self.settings.topic_prefix)])

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
        while not self._stop.is_set():
            item = self._inbox.get()
            if item is None:
                break
            self.handle(*item)

    def handle(self, topic: str, payload: bytes) -> None:
        """Process one MQTT message (public so tests can drive it directly)."""
        self.stats.messages += 1
        stream = StreamTopic.parse(topic, self.settings.topic_prefix)
        if stream is None:
            return
        try:
            frame = wire.decode(payload)
            if frame.kind is not stream.kind:
                raise FrameError(f"frame says {frame.kind} but topic says {stream.kind}", topic=topic)
        except FrameError as err:
            self.stats.rejected_frames += 1
            log.warning("rejected frame on %s: %s", topic, err.reason)
            return
        key = (stream.patient, stream.device)
        device = self.devices.get(key)
        if device is None:
            device = self.devices[key] = DeviceStreams(self.model, stream.patient, stream.device)
            log.info("new stream from patient %s device %s", *key)
        try:
            out = device.on_frame(frame)
        except StreamError as err:
            self.stats.rejected_frames += 1
            log.warning("rejected frame on %s: %s", topic, err)
            return
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
            with self._idle:
                self.stats.finished_devices.add(key)
                self._idle.notify_all()
