"""InfluxDB sink (influxdb-client): events and 1 Hz summaries.

    cramp_events   tags patient, device, type (cramp, spasm, plm); fields state (open/final/cancelled/confirmed),
                   event_id (one per event, shared by its states), duration_s (final only), confidence,
                   peak_uv, subtype, precursor_s, interrupted_s;
                   time = onset (device clock). Rewriting the same event overwrites the same point, so
                   a retried or replayed write never duplicates an event.
    cramp_summary  tags patient, device; fields emg_rms_uv, acc_activity_g, data_received (0/1),
                   fasciculations; one point per second of received data; tag night (the date of
                   the evening the night began, UTC: the date of time - 12 h), for dashboards.
    cramp_heartbeat tags patient, device; fields data_received (0/1 in the last beat), silent_s, lag_s,
                   rejected_frames, queued_points (points waiting for a sink: the durable queue's depth);
                   wall-clock time, every few seconds while a device is recording.
    cramp_device   tags patient, device; fields online (0/1), battery_pct, rssi_dbm, spool_frames,
                   queue_drops, disconnects, lost_samples, last_data_age_s, coverage_pct (this hour);
                   wall-clock time, from each collector status message.

Writes are synchronous, so a failure raises here (the batching writer only logs errors); see
:func:`sink_error` for which failures are retried and which send the points to the dead letter.
Every numeric field is written as a float so the field type never conflicts.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from crampwatch.errors import SinkError

from ..events import Event, Heartbeat, Summary
from .base import SinkSetupError

log = logging.getLogger(__name__)

EVENTS = "cramp_events"
SUMMARY = "cramp_summary"
HEARTBEAT = "cramp_heartbeat"
DEVICE = "cramp_device"
NIGHT_OFFSET_NS = 12 * 3600 * 1_000_000_000


def night_of(time_ns: int) -> str:
    """The night a time belongs to: the UTC date of the evening it began (noon to noon)."""
    return datetime.fromtimestamp((time_ns - NIGHT_OFFSET_NS) / 1e9, UTC).strftime("%Y-%m-%d")


def event_point(e: Event) -> Point:
    point = (
        Point(EVENTS)
        .tag("patient", e.patient)
        .tag("device", e.device)
        .tag("type", e.type)
        .field("state", e.state)
        .field("event_id", e.event_id)
        .time(e.onset_ns, WritePrecision.NS)
    )
    if e.state != "final":
        # An open (or withdrawn) event: same series and time as its final point, which later overwrites
        # it. No duration_s, so panels that count events with count("duration_s") count final ones only.
        return point.field("confidence", float(e.confidence)).field("peak_uv", float(e.peak_uv))
    return (
        point.field("duration_s", float(e.duration_s))
        .field("confidence", float(e.confidence))
        .field("peak_uv", float(e.peak_uv))
        .field("subtype", e.subtype)
        .field("precursor_s", float(e.precursor_s))
        .field("interrupted_s", float(e.interrupted_s))
    )


def event_points(e: Event) -> list[Point]:
    """The event's point, and for a final event announced early at another onset, one more that overwrites
    the open point (same series and time) with state ``confirmed``: no point stays ``open``, and, without a
    ``duration_s`` and in a state of its own, it is counted nowhere (queries of ``state = 'final'`` too)."""
    points = [event_point(e)]
    if e.state == "final" and e.id_onset_ns != e.onset_ns:
        points.append(
            Point(EVENTS)
            .tag("patient", e.patient)
            .tag("device", e.device)
            .tag("type", e.type)
            .field("state", "confirmed")
            .field("event_id", e.event_id)
            .field("confidence", float(e.confidence))
            .field("peak_uv", float(e.peak_uv))
            .time(e.id_onset_ns, WritePrecision.NS)
        )
    return points


def summary_point(s: Summary) -> Point:
    point = (
        Point(SUMMARY)
        .tag("patient", s.patient)
        .tag("device", s.device)
        .tag("night", night_of(s.time_ns))
        .field("emg_rms_uv", float(s.emg_rms_uv))
        .field("data_received", 1.0 if s.data_received else 0.0)
        .field("fasciculations", float(s.fasciculations))
        .time(s.time_ns, WritePrecision.NS)
    )
    if math.isfinite(s.acc_activity_g):
        point = point.field("acc_activity_g", float(s.acc_activity_g))
    return point


def _redacted(url: str) -> str:
    """The URL without user:password, so error messages never carry a credential."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _body_text(err: ApiException) -> str:
    """The server's own error text: ``error`` of a 1.x JSON body, ``message`` of a 2.x one, else the body."""
    body = err.body
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or err.reason or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        text = str(parsed.get("error") or parsed.get("message") or text)
    return " ".join(text.split())[:500]  # one line, bounded: it goes into logs and the dead letter


def sink_error(name: str, url: str, err: ApiException | HTTPError | OSError) -> SinkError:
    """Translate an influxdb-client / urllib3 / OS error of a write into the SinkError SinkSet acts on.

    ============================================  ===========  =========================================
    error                                         retryable    why
    ============================================  ===========  =========================================
    HTTP 400 (bad line protocol, field type       no           the refused points can never be written;
    conflict, "partial write"), 413, 422                       SinkSet splits the batch to isolate them
    HTTP 401 / 403 (wrong token, no write right)  no (setup)   every write fails until the token is fixed
    HTTP 404 (no such database / bucket)          no (setup)   every write fails until it is created
    other 4xx (and 3xx: the client follows none)  no (setup)   the request itself is wrong for this server
    HTTP 408, 429, 5xx (503: influxd down behind  yes          the server (or a proxy) says try later
    a proxy)
    ApiException without a status                 yes          no answer from the server at all
    urllib3 errors (refused, reset, timeout), OS  yes          the server cannot be reached now
    ============================================  ===========  =========================================
    """
    where = f"InfluxDB at {_redacted(url)}"
    if isinstance(err, ApiException):
        status = int(err.status or 0)
        body = _body_text(err)
        if status == 0 or status in (408, 429) or status >= 500:
            return SinkError(name, f"{where} answered {status or 'nothing'}: {body}; will retry", retryable=True)
        if status in (401, 403):
            return SinkSetupError(name, f"{where} refused our credentials ({status}: {body}); check --influx-token")
        if status == 404:
            return SinkSetupError(
                name, f"{where} has no such database or bucket ({status}: {body}); check --influx-bucket"
            )
        if status in (400, 413, 422):
            return SinkError(name, f"{where} refused the data ({status}: {body})", retryable=False)
        return SinkSetupError(name, f"{where} answered {status}: {body}; check --influx-url")
    return SinkError(name, f"{where} is unreachable ({type(err).__name__}); will retry", retryable=True)


def heartbeat_point(h: Heartbeat) -> Point:
    return (
        Point(HEARTBEAT)
        .tag("patient", h.patient)
        .tag("device", h.device)
        .field("data_received", 1.0 if h.data_received else 0.0)
        .field("silent_s", float(h.silent_s))
        .field("lag_s", float(h.lag_s))
        .field("rejected_frames", float(h.rejected_frames))
        .field("queued_points", float(h.queued_points))
        .time(h.time_ns, WritePrecision.NS)
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def device_point(patient: str, device: str, status: dict[str, Any], time_ns: int) -> Point:
    """A collector status message (collector/telemetry.py) as numbers; absent values are left out."""
    online = status.get("collector") == "online" and status.get("link") == "streaming"
    point = Point(DEVICE).tag("patient", patient).tag("device", device).field("online", 1.0 if online else 0.0)
    lost = status.get("device_lost_samples")
    coverage = status.get("coverage_pct_by_hour")
    fields = {
        "battery_pct": status.get("battery_pct"),
        "rssi_dbm": status.get("rssi_dbm"),
        "spool_frames": status.get("spool_frames"),
        "queue_drops": status.get("queue_drops"),
        "disconnects": status.get("disconnects"),
        "last_data_age_s": status.get("last_data_age_s"),
        "lost_samples": sum(v for v in lost.values() if _number(v) is not None) if isinstance(lost, dict) else None,
        "coverage_pct": coverage[max(coverage)] if isinstance(coverage, dict) and coverage else None,
    }
    for name, value in fields.items():
        number = _number(value)
        if number is not None and math.isfinite(number):
            point = point.field(name, number)
    return point.time(time_ns, WritePrecision.NS)


class InfluxSink:
    name = "influxdb"

    def __init__(self, url: str, token: str, org: str, bucket: str, *, timeout_ms: int = 10_000) -> None:
        self.url = url
        self.bucket = bucket
        self.org = org
        self._client = InfluxDBClient(url=url, token=token or "none", org=org, timeout=timeout_ms)
        # SYNCHRONOUS, not the batching writer: that one only logs a refused write (e.g. a 400 field type
        # conflict) on its own thread, so the points would be lost without anyone knowing.
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def check(self) -> str | None:
        """None when the server answers a ping; else what is wrong, for the log line at start."""
        if self._client.ping():
            return None
        return f"InfluxDB at {_redacted(self.url)} does not answer (GET /ping failed)"

    def _send(self, points: list[Point]) -> None:
        try:
            self._write.write(bucket=self.bucket, org=self.org, record=points)
        except (ApiException, HTTPError, OSError) as err:
            raise sink_error(self.name, self.url, err) from err

    def write_events(self, events: list[Event]) -> None:
        self._send([p for e in events for p in event_points(e)])

    def write_summaries(self, summaries: list[Summary]) -> None:
        for start in range(0, len(summaries), 5000):
            self._send([summary_point(s) for s in summaries[start : start + 5000]])

    def write_heartbeats(self, beats: list[Heartbeat]) -> None:
        self._send([heartbeat_point(h) for h in beats])

    def write_device_status(self, patient: str, device: str, status: dict[str, Any], time_ns: int) -> None:
        self._send([device_point(patient, device, status, time_ns)])

    def close(self) -> None:
        self._client.close()
