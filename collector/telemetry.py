"""Collector status on a retained MQTT topic, and a last will that marks the collector offline.

Why: overnight, nobody watches a terminal. Whoever looks in the morning (or a dashboard, or an alert
rule) should see from one retained message whether the sensor was connected, how much of each hour's
data arrived, and what to do about it. Topic ``<prefix>/<patient>/<device>/status`` (see
:func:`crampwatch.topics.status_topic`), JSON, retained, QoS 1::

    {"collector": "online", "link": "streaming", "message": "streaming",
     "profile": "ganglion", "battery_pct": 81, "rssi_dbm": -67,
     "connections": 3, "disconnects": 2, "watchdog_resets": 0, "notifications": 123456,
     "samples": {"emg": ..., "acc": ...}, "expected_samples": {"emg": ..., "acc": ...},
     "coverage_pct_by_hour": {"2026-01-01T23:00Z": 99.2, ...},
     "device_lost_samples": {"emg": 12}, "queue_drops": 0, "spool_frames": 0, "spool_mb": 0.0,
     "last_data_age_s": 0.2, "updated": "2026-01-02T03:04:05Z"}

The sensor's Bluetooth address is not in it (privacy, see docs/security.md).

The MQTT last will (set before connecting) replaces it with ``{"collector": "offline", ...}`` if the
collector dies or loses the broker without saying goodbye; a clean stop publishes
``"collector": "stopped"``.

"Coverage" is samples received / samples the nominal rate promises for the time the collector was
running in that hour, per stream (EMG when the device has EMG): 100 % = nothing lost anywhere between
the sensor and the spool.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as mqtt

from crampwatch.frames import StreamKind
from crampwatch.topics import status_topic

from .ble.runner import LinkState, RunnerStats
from .publisher import FramePublisher

log = logging.getLogger(__name__)

HOURS_KEPT: Final = 24


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Coverage:
    """Samples received per clock hour against what the nominal rate promises for the time observed."""

    def __init__(self, rate_hz: float, *, start: float | None = None) -> None:
        self.rate_hz = rate_hz
        self.start = time.time() if start is None else start
        self._received: OrderedDict[int, int] = OrderedDict()
        self._last_total = 0

    def update(self, total_samples: int, now: float | None = None) -> None:
        """Account the samples received since the last update to the current hour.

        Samples are attributed to the hour of the update, so near an hour boundary up to one status
        interval (30 s) of data can land in the next hour.
        """
        now = time.time() if now is None else now
        hour = int(now // 3600)
        self._received[hour] = self._received.get(hour, 0) + total_samples - self._last_total
        self._last_total = total_samples
        while len(self._received) > HOURS_KEPT:
            self._received.popitem(last=False)

    def by_hour(self, now: float | None = None) -> dict[str, float]:
        now = time.time() if now is None else now
        out: dict[str, float] = {}
        for hour, received in self._received.items():
            begin = max(hour * 3600, self.start)
            end = min((hour + 1) * 3600, now)
            expected = (end - begin) * self.rate_hz
            if expected > 0:
                out[_iso(hour * 3600)[:-4] + "Z"] = round(min(100.0, 100.0 * received / expected), 1)
        return out

    def expected(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return round((now - self.start) * self.rate_hz)


class StatusReporter:
    """Builds and publishes the status message; sets the last will. Call :meth:`publish` periodically."""

    def __init__(
        self,
        publisher: FramePublisher,
        profile_name: str,
        stats: RunnerStats,
        rates: dict[StreamKind, float],
    ) -> None:
        self.publisher = publisher
        self.profile_name = profile_name
        self.stats = stats
        self.topic = status_topic(publisher.prefix, publisher.patient, publisher.device)
        self.coverage = {kind: Coverage(rate) for kind, rate in rates.items()}

    def set_last_will(self, client: mqtt.Client) -> None:
        """Must be called before connecting: the broker publishes this if we vanish."""
        will = {
            "collector": "offline",
            "profile": self.profile_name,
            "message": "collector offline (crashed, "
            "killed, or lost its network); data is buffered in its spool if it is still running",
        }
        client.will_set(self.topic, json.dumps(will), qos=1, retain=True)

    def message(self) -> str:
        """One sentence a non-expert can act on."""
        s = self.stats
        now = time.time()
        if s.state is LinkState.STREAMING:
            if s.last_data is not None and now - s.last_data > 10:
                return f"connected but no data for {now - s.last_data:.0f} s"
            return "streaming"
        if s.state is LinkState.STOPPED:
            return "stopped"
        since = s.disconnected_since
        if since is None:
            return "looking for the sensor"
        minutes = (now - since) / 60
        return (
            f"sensor out of range or off for {minutes:.0f} min: check it is switched on, charged, worn, "
            "and near the collector"
        )

    def snapshot(self, *, collector: str = "online") -> dict[str, Any]:
        s = self.stats
        now = time.time()
        for kind, coverage in self.coverage.items():
            coverage.update(s.samples.get(kind, 0), now)
        main = StreamKind.EMG if StreamKind.EMG in self.coverage else next(iter(self.coverage), None)
        return {
            "collector": collector,
            "link": s.state.value,
            "message": self.message() if collector == "online" else collector,
            "profile": self.profile_name,
            # No Bluetooth address: it identifies the wearable (and so the person wearing it) for good and
            # would leave this computer; the local log has it for troubleshooting (docs/security.md).
            "battery_pct": s.battery_pct,
            "rssi_dbm": s.rssi,
            "connections": s.connections,
            "disconnects": s.disconnects,
            "watchdog_resets": s.watchdog_resets,
            "notifications": s.notifications,
            "samples": {k.value: s.samples.get(k, 0) for k in self.coverage},
            "expected_samples": {k.value: c.expected(now) for k, c in self.coverage.items()},
            "coverage_pct_by_hour": self.coverage[main].by_hour(now) if main is not None else {},
            "device_lost_samples": {k.value: v for k, v in s.device_lost_samples.items()},
            "queue_drops": s.queue_drops,
            "publish_errors": self.publisher.stats.failed,
            "spool_frames": self.publisher.spool.count,
            "spool_mb": round(self.publisher.spool.bytes / 1e6, 2),
            "spool_dropped_frames": self.publisher.spool.stats.dropped_frames,
            "last_data_age_s": round(now - s.last_data, 1) if s.last_data else None,
            "updated": _iso(now),
        }

    def publish(self, *, collector: str = "online") -> dict[str, Any]:
        """Publish the status (retained) if the broker is connected; return it either way."""
        status = self.snapshot(collector=collector)
        if self.publisher.client.is_connected():
            self.publisher.publish_aux(self.topic, json.dumps(status).encode(), retain=True)
        return status
