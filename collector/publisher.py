"""Publish frames over MQTT with QoS 1 and account for every one until the broker acknowledges it.

Every source (simulator, file replay, BLE) hands frames to one :class:`FramePublisher`. A frame counts
as delivered only when paho's ``on_publish`` reports the broker's PUBACK for its message id (paho keeps
messages published while disconnected and resends them after reconnecting; their ``MessageInfo.rc``
stays "no connection" even after delivery, so the mid is the only reliable handle).

This version keeps unacknowledged frames in memory; the durable on-disk spool that survives a collector
restart plugs in here (issue: BLE collector, store-and-forward).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from . import wire
from .errors import BrokerError
from .frames import Frame
from .topics import StreamTopic

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    published: int = 0
    acknowledged: int = 0
    bytes: int = 0


class FramePublisher:
    """Encodes frames and publishes them on ``<prefix>/<patient>/<device>/<stream>``."""

    def __init__(self, client: mqtt.Client, prefix: str, patient: str, device: str) -> None:
        self.client = client
        self.prefix = prefix
        self.patient = patient
        self.device = device
        self.stats = PublishStats()
        self._unacked: set[int] = set()
        self._early: set[int] = set()  # PUBACKs that arrived before publish() returned the mid
        self._lock = threading.Condition()
        client.on_publish = self._on_publish

    def publish(self, frame: Frame) -> None:
        topic = StreamTopic(self.patient, self.device, frame.kind).render(self.prefix)
        payload = wire.encode(frame)
        # Never hold our lock while calling paho: its network thread holds paho's lock when it calls
        # on_publish, which takes ours (lock-order deadlock).
        info = self.client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise BrokerError(f"publishing to {topic} failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.stats.acknowledged += 1
            else:
                self._unacked.add(info.mid)
            self.stats.published += 1
            self.stats.bytes += len(payload)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
                self.stats.acknowledged += 1
            else:
                self._early.add(mid)
            self._lock.notify_all()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._unacked)

    def wait_until_below(self, limit: int, timeout_s: float) -> None:
        """Back-pressure: block while more than ``limit`` frames await their PUBACK."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self._unacked) > limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerError(
                        f"{len(self._unacked)} frames unacknowledged for {timeout_s:.0f} s: "
                        "the broker is unreachable or overloaded"
                    )
                self._lock.wait(min(left, 1.0))

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until the broker has acknowledged every frame published so far."""
        self.wait_until_below(0, timeout_s)
