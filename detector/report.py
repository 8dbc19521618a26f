"""The night report: one patient's night as a self-contained HTML page (inline SVG), and a PDF of it.

For a clinician who is not an engineer: plain words and units, no field names. Two sources give the same
:class:`NightData`:

- InfluxDB (what the live service wrote), read with InfluxQL on ``/query`` (InfluxDB 1.x, or 2.x through
  its v1-compatible API and a DBRP mapping): :func:`read_influx`;
- an events CSV from ``cramp-detector detect`` plus the recording it came from: :func:`read_offline`.

The PDF is printed by headless Chromium (Debian's ``chromium``) when it is installed.
"""

from __future__ import annotations

import csv
import html
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from crampwatch.errors import ConfigError, RecordingError, SinkError

FloatArray = npt.NDArray[np.float64]
NS = 1_000_000_000
GAP_MIN_S = 5.0  # shorter losses are counted in coverage but not listed as gaps

KIND_WORDS = {"cramp": "Cramp", "spasm": "Spasm", "plm": "Leg movement (PLM)"}
COLORS = {"cramp": "#c0392b", "spasm": "#e67e22", "plm": "#2e86c1", "data": "#27ae60", "gap": "#f5b041"}


@dataclass(frozen=True)
class ReportEvent:
    type: str
    onset_ns: int
    duration_s: float
    confidence: float
    peak_uv: float
    subtype: str = ""

    @property
    def offset_ns(self) -> int:
        return self.onset_ns + round(self.duration_s * NS)


@dataclass
class NightData:
    """What a report shows; times in ns since the Unix epoch (or since the recording start offline)."""

    patient: str
    night: str  # the date of the evening, as the clinic names the night
    events: list[ReportEvent]
    times_ns: npt.NDArray[np.int64]  # one per second of data
    emg_rms_uv: FloatArray
    data_received: FloatArray  # 1 = complete second, 0 = lost
    fasciculations: FloatArray | None = None  # per second; None when unknown
    source: str = ""
    wall_clock: bool = True  # False: times count from the recording start
    model: dict[str, str] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return len(self.times_ns) / 3600


# -- reading ---------------------------------------------------------------------------------------


def night_range_ns(night: str) -> tuple[int, int]:
    """Noon to noon UTC around the night of ``night`` (YYYY-MM-DD), as the detector's ``night`` tag."""
    try:
        day = datetime.strptime(night, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"--night {night!r} is not a date: use YYYY-MM-DD, the date of the evening") from None
    start = day + timedelta(hours=12)
    return int(start.timestamp()) * NS, int((start + timedelta(days=1)).timestamp()) * NS


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql(url: str, db: str, query: str, *, token: str = "") -> list[dict[str, Any]]:
    """Rows of the first statement (with the series' tags), times in ns. Raises SinkError with the cause."""
    form = urllib.parse.urlencode({"q": query, "db": db, "epoch": "ns"}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/query", data=form)  # noqa: S310 (http(s) checked by caller)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
            payload = json.load(resp)
    except urllib.error.HTTPError as err:
        with err:
            body = err.read().decode(errors="replace").strip()
        hint = " (check --influx-token)" if err.code in (401, 403) else ""
        raise SinkError("influxdb", f"InfluxDB at {url} answered {err.code}: {body}{hint}", retryable=False) from None
    except OSError as err:
        raise SinkError(
            "influxdb", f"InfluxDB at {url} is unreachable ({err}); check --influx-url", retryable=True
        ) from None
    results = payload.get("results", [])
    for result in results:
        if "error" in result:
            raise SinkError(
                "influxdb", f"InfluxDB refused the query: {result['error']} (database {db!r})", retryable=False
            )
    rows: list[dict[str, Any]] = []
    for series in results[0].get("series", []) if results else []:
        tags = series.get("tags", {})
        rows.extend({**tags, **dict(zip(series["columns"], values, strict=True))} for values in series["values"])
    return rows


def read_influx(url: str, db: str, patient: str, night: str, *, token: str = "") -> NightData:
    """The night as the live service wrote it (measurements cramp_events and cramp_summary)."""
    start, end = night_range_ns(night)
    # The only outside value, the patient id, is quoted by _quote; start and end are integers.
    where = f"patient = {_quote(patient)} AND time >= {start} AND time < {end}"
    # Final events only: an open or withdrawn announcement has no duration_s (as in the Grafana panels).
    event_rows = influxql(
        url,
        db,
        f'SELECT "type", duration_s, confidence, peak_uv, subtype FROM cramp_events WHERE {where} AND duration_s >= 0',  # noqa: S608
        token=token,
    )
    summary_rows = influxql(
        url,
        db,
        f"SELECT emg_rms_uv, data_received, fasciculations FROM cramp_summary WHERE {where}",  # noqa: S608
        token=token,
    )
    if not summary_rows:
        raise ConfigError(
            f"no data for patient {patient!r} on the night of {night} in database {db!r}: check the patient id "
            "and the date (the date of the evening the night began, UTC)"
        )
    events = [
        ReportEvent(
            type=str(r["type"]),
            onset_ns=int(r["time"]),
            duration_s=float(r["duration_s"]),
            confidence=float(r["confidence"] or 0),
            peak_uv=float(r["peak_uv"] or 0),
            subtype=str(r.get("subtype") or ""),
        )
        for r in event_rows
    ]
    summary_rows.sort(key=lambda r: int(r["time"]))
    return NightData(
        patient=patient,
        night=night,
        events=sorted(events, key=lambda e: e.onset_ns),
        times_ns=np.array([int(r["time"]) for r in summary_rows], dtype=np.int64),
        emg_rms_uv=np.array([float(r["emg_rms_uv"] or 0) for r in summary_rows]),
        data_received=np.array([float(r["data_received"] or 0) for r in summary_rows]),
        fasciculations=np.array([float(r.get("fasciculations") or 0) for r in summary_rows]),
        source=f"InfluxDB {url}, database {db}",
    )


def read_offline(
    events_csv: Path,
    recording: Path,
    *,
    patient: str = "",
    fmt: str | None = None,
    emg: list[str] | None = None,
    acc: list[str] | None = None,
) -> NightData:
    """A ``detect`` events CSV and its recording; the per-second data comes from the same pipeline as live."""
    from crampwatch.formats import read_recording

    from .offline import run_recording

    try:
        with events_csv.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise RecordingError(str(events_csv), f"cannot read the events file: {err.strerror or err}") from None
    if rows and not {"type", "onset_s", "offset_s"} <= set(rows[0]):
        raise RecordingError(str(events_csv), "not an events CSV from `cramp-detector detect` (no type/onset_s)")
    rec = read_recording(recording, fmt=fmt, emg=emg, acc=acc)
    start = rec.meta.get("start")
    start_ns = int(start.timestamp() * NS) if isinstance(start, datetime) else 0
    out = run_recording(rec, None)
    events = [
        ReportEvent(
            type=r["type"],
            onset_ns=start_ns + round(float(r["onset_s"]) * NS),
            duration_s=float(r["offset_s"]) - float(r["onset_s"]),
            confidence=float(r.get("confidence") or 0),
            peak_uv=float(r.get("peak_uv") or 0),
            subtype=r.get("subtype") or "",
        )
        for r in rows
    ]
    first = datetime.fromtimestamp(start_ns / NS, UTC) if start_ns else None
    night = (first - timedelta(hours=12)).strftime("%Y-%m-%d") if first else recording.stem
    return NightData(
        patient=patient or (rows[0].get("patient", "") if rows else "") or recording.stem,
        night=night,
        events=sorted(events, key=lambda e: e.onset_ns),
        times_ns=np.array([s.time_ns for s in out.summaries], dtype=np.int64) + start_ns,
        emg_rms_uv=np.array([s.emg_rms_uv for s in out.summaries]),
        data_received=np.array([1.0 if s.data_received else 0.0 for s in out.summaries]),
        fasciculations=np.array([float(s.fasciculations) for s in out.summaries]),
        source=f"recording {recording.name}, events {events_csv.name}",
        wall_clock=bool(start_ns),
    )


def model_info(model_path: Path) -> dict[str, str]:
    """Name, creation date and SHA-256 from the model card (no model is loaded)."""
    from .model import card_path

    try:
        card = json.loads(card_path(model_path).read_text())
    except (OSError, ValueError):
        return {"name": model_path.name, "version": "unknown (no model card)", "sha256": "unknown"}
    return {
        "name": str(card.get("name", model_path.stem)),
        "version": str(card.get("version") or card.get("created", "unknown")),
        "sha256": str(card.get("sha256", "unknown")),
    }


# -- numbers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS


def gaps(data: NightData, min_s: float = GAP_MIN_S) -> list[Gap]:
    """Runs of lost seconds, and spans with no data at all between the first and the last second."""
    out: list[Gap] = []
    start: int | None = None
    prev: int | None = None
    for t, ok in zip(data.times_ns.tolist(), data.data_received.tolist(), strict=True):
        if prev is not None and t - prev > 1.5 * NS:  # nothing arrived at all in between
            if start is None:
                start = prev + NS
            out.append(Gap(start, t))
            start = None
        if ok < 0.5 and start is None:
            start = t
        elif ok >= 0.5 and start is not None:
            out.append(Gap(start, t))
            start = None
        prev = t
    if start is not None and prev is not None:
        out.append(Gap(start, prev + NS))
    return [g for g in out if g.seconds >= min_s]


def coverage_by_hour(data: NightData, tz: tzinfo) -> list[tuple[str, float, float]]:
    """(hour label, % of that hour's recorded seconds received complete, minutes recorded) per clock hour."""
    if not len(data.times_ns):
        return []
    hours = (data.times_ns // (3600 * NS)).astype(np.int64)
    out = []
    for hour in np.unique(hours).tolist():
        mask = hours == hour
        label = _clock(int(hour) * 3600 * NS, tz, data.wall_clock)
        span = min(3600.0, float(data.times_ns[mask][-1] - data.times_ns[mask][0]) / NS + 1)
        received = float(data.data_received[mask].sum())
        out.append((label, 100.0 * received / max(span, 1.0), span / 60))
    return out


@dataclass(frozen=True)
class Totals:
    hours: float
    coverage_pct: float
    counts: dict[str, int]
    cramp_minutes: float
    longest_cramp_min: float
    plm_index: float
    fasciculations_per_h: float | None


def totals(data: NightData) -> Totals:
    counts = {kind: sum(e.type == kind for e in data.events) for kind in KIND_WORDS}
    cramps = [e.duration_s for e in data.events if e.type == "cramp"]
    hours = data.hours
    first, last = (int(data.times_ns[0]), int(data.times_ns[-1])) if len(data.times_ns) else (0, 0)
    span_s = (last - first) / NS + 1 if len(data.times_ns) else 0.0
    return Totals(
        hours=hours,
        coverage_pct=100.0 * float(data.data_received.sum()) / span_s if span_s else 0.0,
        counts=counts,
        cramp_minutes=sum(cramps) / 60,
        longest_cramp_min=max(cramps, default=0.0) / 60,
        plm_index=counts["plm"] / hours if hours else 0.0,
        fasciculations_per_h=(
            float(data.fasciculations.sum()) / hours if data.fasciculations is not None and hours else None
        ),
    )


# -- drawing ---------------------------------------------------------------------------------------


def _clock(t_ns: int, tz: tzinfo, wall_clock: bool, *, seconds: bool = False) -> str:
    if not wall_clock:
        total = int(t_ns // NS)
        h, rem = divmod(total, 3600)
        return f"+{h}:{rem // 60:02d}" + (f":{rem % 60:02d}" if seconds else "")
    return datetime.fromtimestamp(t_ns / NS, tz).strftime("%H:%M:%S" if seconds else "%H:%M")


def _ticks(t0: int, t1: int, n: int = 8) -> list[int]:
    span_s = max(1, (t1 - t0) // NS)
    steps = [60, 300, 600, 900, 1800, 3600, 7200]
    step = next((s for s in steps if span_s / s <= n), 7200) * NS
    first = (t0 // step + 1) * step
    return list(range(first, t1, step))


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


class Svg:
    """A tiny SVG builder: plot area from (left, top) of size (w, h), time on x."""

    def __init__(self, width: int, height: int, *, label: str) -> None:
        self.width, self.height = width, height
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'role="img" aria-label="{_esc(label)}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">'
        ]

    def add(self, element: str) -> None:
        self.parts.append(element)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, title: str = "") -> None:
        tip = f"<title>{_esc(title)}</title>" if title else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1.5):.1f}" height="{h:.1f}" fill="{fill}">{tip}</rect>')

    def text(self, x: float, y: float, text: str, *, anchor: str = "start", size: int = 12, fill: str = "#222") -> None:
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}">{_esc(text)}</text>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#ccc") -> None:
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="1"/>')

    def polyline(self, xs: Sequence[float], ys: Sequence[float], stroke: str) -> None:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        self.add(f'<polyline points="{points}" fill="none" stroke="{stroke}" stroke-width="1.2"/>')

    def render(self) -> str:
        return "\n".join([*self.parts, "</svg>"])


def _envelope(data: NightData, t0: int, t1: int, width: int) -> tuple[list[int], list[float]]:
    """Per-pixel maximum of the EMG RMS between t0 and t1 (so short bursts stay visible)."""
    mask = (data.times_ns >= t0) & (data.times_ns <= t1)
    times, values = data.times_ns[mask], data.emg_rms_uv[mask]
    if not len(times):
        return [], []
    bins = ((times - t0) * width // max(1, t1 - t0)).astype(np.int64)
    xs, ys = [], []
    for b in np.unique(bins).tolist():
        xs.append(int(b))
        ys.append(float(values[bins == b].max()))
    return xs, ys


def _runs(data: NightData) -> list[tuple[int, int]]:
    """Spans of consecutive complete seconds, as (start, end) in ns."""
    out: list[tuple[int, int]] = []
    for t, ok in zip(data.times_ns.tolist(), data.data_received.tolist(), strict=True):
        if ok < 0.5:
            continue
        if out and t - out[-1][1] <= NS // 2:
            out[-1] = (out[-1][0], t + NS)
        else:
            out.append((t, t + NS))
    return out


def timeline_svg(data: NightData, tz: tzinfo) -> str:
    """Hypnogram-style overview: one row per kind of event, a data row, and the EMG envelope below."""
    width, left, right = 1000, 170, 20
    plot_w = width - left - right
    rows = [*KIND_WORDS, "data"]
    row_h, top = 26, 10
    env_top = top + row_h * len(rows) + 16
    env_h = 110
    height = env_top + env_h + 40
    t0, t1 = int(data.times_ns[0]), int(data.times_ns[-1]) + NS
    svg = Svg(width, height, label="Timeline of the night")

    def x(t: int) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    for i, kind in enumerate(rows):
        y = top + i * row_h
        svg.rect(left, y + 2, plot_w, row_h - 4, "#f4f6f7")
        svg.text(left - 8, y + row_h / 2 + 4, "Data received" if kind == "data" else KIND_WORDS[kind], anchor="end")
        if kind == "data":
            for a, b in _runs(data):
                svg.rect(x(a), y + 6, x(b) - x(a), row_h - 12, COLORS["data"], "data received")
            for g in gaps(data, min_s=1.0):
                svg.rect(x(g.start_ns), y + 2, x(g.end_ns) - x(g.start_ns), row_h - 4, COLORS["gap"], "data lost")
        else:
            for e in data.events:
                if e.type == kind:
                    tip = f"{KIND_WORDS[kind]} at {_clock(e.onset_ns, tz, data.wall_clock)}, {e.duration_s:.0f} s"
                    svg.rect(x(e.onset_ns), y + 2, x(e.offset_ns) - x(e.onset_ns), row_h - 4, COLORS[kind], tip)
    # EMG envelope
    xs, ys = _envelope(data, t0, t1, plot_w)
    peak = max([*ys, 1.0])
    svg.rect(left, env_top, plot_w, env_h, "#fbfcfc")
    svg.text(left - 8, env_top + 14, "Muscle activity", anchor="end")
    svg.text(left - 8, env_top + 30, f"(EMG, up to {peak:.0f} µV)", anchor="end", size=10, fill="#555")
    for e in data.events:
        if e.type == "cramp":
            svg.rect(x(e.onset_ns), env_top, x(e.offset_ns) - x(e.onset_ns), env_h, "#fadbd8")
    if xs:
        svg.polyline([left + v for v in xs], [env_top + env_h - y / peak * (env_h - 6) for y in ys], "#34495e")
    axis_y = env_top + env_h
    svg.line(left, axis_y, left + plot_w, axis_y, "#888")
    for t in _ticks(t0, t1):
        svg.line(x(t), top, x(t), axis_y, "#e0e0e0")
        svg.text(x(t), axis_y + 16, _clock(t, tz, data.wall_clock), anchor="middle")
    return svg.render()


def zoom_svg(data: NightData, event: ReportEvent, tz: tzinfo, *, margin_s: float = 60.0) -> str:
    """One cramp with a minute either side: the EMG envelope, second by second, in µV."""
    width, height, left, right, top, bottom = 480, 190, 56, 10, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    t0 = event.onset_ns - round(margin_s * NS)
    t1 = event.offset_ns + round(margin_s * NS)
    mask = (data.times_ns >= t0) & (data.times_ns <= t1)
    times, values = data.times_ns[mask], data.emg_rms_uv[mask]
    svg = Svg(width, height, label=f"Cramp at {_clock(event.onset_ns, tz, data.wall_clock)}")

    def x(t: int) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    peak = max(float(values.max()) if len(values) else 0.0, 1.0)
    svg.rect(x(event.onset_ns), top, x(event.offset_ns) - x(event.onset_ns), plot_h, "#fadbd8")
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, "#888")
    svg.line(left, top, left, top + plot_h, "#888")
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h - frac * plot_h
        svg.text(left - 6, y + 4, f"{frac * peak:.0f}", anchor="end", size=10)
    svg.text(4, top + 10, "µV", size=10, fill="#555")
    if len(times):
        svg.polyline(
            [x(int(t)) for t in times.tolist()], [top + plot_h - v / peak * plot_h for v in values.tolist()], "#c0392b"
        )
    for t, anchor in ((t0, "start"), (event.onset_ns, "middle"), (event.offset_ns, "middle"), (t1, "end")):
        svg.text(x(t), top + plot_h + 16, _clock(t, tz, data.wall_clock, seconds=True), anchor=anchor, size=10)
    return svg.render()


def coverage_svg(rows: list[tuple[str, float, float]]) -> str:
    width, height, left, top, bottom = 1000, 150, 50, 10, 30
    plot_h = height - top - bottom
    slot = (width - left - 10) / max(1, len(rows))
    svg = Svg(width, height, label="Data coverage by hour")
    for frac in (0, 50, 90, 100):
        y = top + plot_h - frac / 100 * plot_h
        svg.line(left, y, width - 10, y, "#e74c3c" if frac == 90 else "#e0e0e0")
        svg.text(left - 6, y + 4, f"{frac} %", anchor="end", size=10)
    for i, (label, pct, _minutes) in enumerate(rows):
        h = pct / 100 * plot_h
        color = COLORS["data"] if pct >= 90 else COLORS["gap"]
        bar = min(slot * 0.7, 80.0)
        svg.rect(left + i * slot + (slot - bar) / 2, top + plot_h - h, bar, h, color, f"{label}: {pct:.1f} %")
        svg.text(left + i * slot + slot / 2, top + plot_h + 16, label, anchor="middle", size=11)
    return svg.render()


# -- the page --------------------------------------------------------------------------------------

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1040px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 8px; border-bottom: 2px solid #d6dbdf; }
.sub { color: #555; margin: 0 0 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #d6dbdf; border-radius: 6px; padding: 8px 12px; min-width: 140px; }
.card b { display: block; font-size: 22px; } .card span { color: #555; font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { background: #1f4e79; color: #fff; text-align: left; padding: 5px 8px; }
td { border-bottom: 1px solid #e5e8e8; padding: 4px 8px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.zooms { display: flex; flex-wrap: wrap; gap: 12px; } .zoom { width: 490px; }
.zoom p { margin: 2px 0; font-size: 13px; }
.note { color: #555; font-size: 12px; }
.warn { color: #922b21; font-weight: bold; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
  .zoom, table tr, svg { break-inside: avoid; } }
"""


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def render_html(data: NightData, *, tz: tzinfo = UTC, generated: datetime | None = None) -> str:
    """The whole report as one HTML page with everything inline."""
    if not len(data.times_ns):
        raise ConfigError(f"no data for patient {data.patient!r} on the night of {data.night}: nothing to report")
    tot = totals(data)
    holes = gaps(data)
    hourly = coverage_by_hour(data, tz)
    tz_name = str(getattr(tz, "key", None) or tz.tzname(None) or "UTC")
    when = "time from the start of the recording" if not data.wall_clock else f"clock times in {tz_name}"
    start_ns, end_ns = int(data.times_ns[0]), int(data.times_ns[-1]) + NS
    span = f"{_clock(start_ns, tz, data.wall_clock)} to {_clock(end_ns, tz, data.wall_clock)}"
    generated = generated or datetime.now(UTC)

    def card(value: str, label: str) -> str:
        return f'<div class="card"><b>{_esc(value)}</b><span>{_esc(label)}</span></div>'

    fasc = f"{tot.fasciculations_per_h:.0f} per hour" if tot.fasciculations_per_h is not None else "not available"
    cards = [
        card(str(tot.counts["cramp"]), "cramps"),
        card(f"{tot.cramp_minutes:.1f} min", "in cramp, in total"),
        card(_duration(tot.longest_cramp_min * 60) if tot.counts["cramp"] else "none", "longest cramp"),
        card(str(tot.counts["spasm"]), "spasms (short involuntary contractions)"),
        card(f"{tot.plm_index:.1f} per hour", f"PLM index ({tot.counts['plm']} periodic leg movements)"),
        card(fasc, "muscle twitches (fasciculations) at rest"),
        card(f"{tot.hours:.1f} h", "recorded"),
        card(f"{tot.coverage_pct:.1f} %", "of the data arrived"),
    ]
    legend = "".join(
        f'<span><i style="background:{COLORS[k]}"></i>{_esc(w)}</span>'
        for k, w in (*KIND_WORDS.items(), ("data", "Data received"), ("gap", "Data lost"))
    )
    event_rows = []
    for i, e in enumerate(data.events, 1):
        kind = KIND_WORDS.get(e.type, e.type)
        if e.subtype:
            kind += f" ({e.subtype})"
        certainty = "by rule (AASM)" if e.type == "plm" else f"{e.confidence * 100:.0f} %"
        event_rows.append(
            f"<tr><td>{i}</td><td>{_esc(_clock(e.onset_ns, tz, data.wall_clock, seconds=True))}</td>"
            f"<td>{_esc(kind)}</td><td>{_esc(_duration(e.duration_s))}</td>"
            f"<td>{e.peak_uv:.0f} µV</td><td>{certainty}</td></tr>"
        )
    events_table = (
        '<table id="events"><tr><th>#</th><th>Start</th><th>Event</th><th>Duration</th>'
        "<th>Strongest muscle activity</th><th>Detector's certainty</th></tr>" + "".join(event_rows) + "</table>"
        if event_rows
        else '<p id="events">No cramps, spasms or periodic leg movements were detected.</p>'
    )
    zooms = [
        f'<div class="zoom"><p><b>Cramp {n}</b> at {_esc(_clock(e.onset_ns, tz, data.wall_clock))}, lasting '
        f"{_esc(_duration(e.duration_s))}, strongest activity {e.peak_uv:.0f} µV</p>{zoom_svg(data, e, tz)}</div>"
        for n, e in enumerate((e for e in data.events if e.type == "cramp"), 1)
    ]
    gap_rows = "".join(
        f"<tr><td>{_esc(_clock(g.start_ns, tz, data.wall_clock, seconds=True))}</td>"
        f"<td>{_esc(_clock(g.end_ns, tz, data.wall_clock, seconds=True))}</td>"
        f"<td>{_esc(_duration(g.seconds))}</td></tr>"
        for g in holes
    )
    hour_rows = "".join(
        f"<tr><td>{_esc(label)}</td><td>{minutes:.0f} min</td><td>{pct:.1f} %</td></tr>"
        for label, pct, minutes in hourly
    )
    quality_warning = (
        '<p class="warn">Less than 90 % of the data arrived: events in the lost parts were not seen, so the '
        "counts above are a lower bound.</p>"
        if tot.coverage_pct < 90
        else ""
    )
    model = data.model or {}
    title = f"Night report: patient {data.patient}, night of {data.night}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="sub">Recorded {_esc(span)} ({_esc(when)}). Source: {_esc(data.source)}.</p>

<h2>Summary</h2>
<div class="cards">{"".join(cards)}</div>
<p class="note">PLM index: periodic limb movements per hour recorded. Cramp and spasm times are as detected
from the leg's muscle activity (EMG) and movement; please review the events below.</p>
{quality_warning}

<h2>The night at a glance</h2>
<div class="legend">{legend}</div>
<div id="timeline">{timeline_svg(data, tz)}</div>

<h2>Events</h2>
{events_table}

<h2>Each cramp up close</h2>
<p class="note">Muscle activity (EMG envelope, µV) from a minute before to a minute after; the cramp is shaded.</p>
<div class="zooms">{"".join(zooms) or "<p>No cramps this night.</p>"}</div>

<h2>Data quality</h2>
<p>{tot.coverage_pct:.1f} % of the data arrived complete over {tot.hours:.1f} hours recorded.
{len(holes)} gap(s) of {GAP_MIN_S:.0f} seconds or more.</p>
<div id="coverage">{coverage_svg(hourly)}</div>
<table><tr><th>Hour starting</th><th>Recorded</th><th>Data received</th></tr>{hour_rows}</table>
<h3>Gaps</h3>
{"<table><tr><th>From</th><th>To</th><th>Length</th></tr>" + gap_rows + "</table>" if gap_rows else "<p>None.</p>"}

<h2>About this report</h2>
<p class="note">Detection model: {_esc(model.get("name", "unknown"))}, version {_esc(model.get("version", "unknown"))},
model card SHA-256 <code>{_esc(model.get("sha256", "unknown"))}</code>.
Report made {_esc(generated.strftime("%Y-%m-%d %H:%M UTC"))} by CrampWatch.
This is a screening aid, not a diagnosis.</p>
</body></html>
"""


# -- output ----------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def chromium_command(browser: str, *args: str) -> list[str]:
    """Headless Chromium as root in a container needs --no-sandbox; no GPU, no first-run noise."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars", *args]


def print_pdf(html_path: Path, pdf_path: Path, *, browser: str) -> None:
    cmd = chromium_command(
        browser, "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()
    )
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not pdf_path.is_file():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise RecordingError(str(html_path), f"chromium could not print it to PDF (exit {result.returncode}): {tail}")


def screenshot(html_path: Path, png_path: Path, *, browser: str, width: int = 1100, height: int = 1600) -> None:
    cmd = chromium_command(browser, f"--window-size={width},{height}", f"--screenshot={png_path}")
    result = subprocess.run([*cmd, html_path.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not png_path.is_file():
        raise RecordingError(str(html_path), f"chromium could not take a screenshot: {result.stderr.strip()[-300:]}")


def write_report(data: NightData, out: Path, *, tz: tzinfo = UTC, pdf: bool = True) -> tuple[Path, Path | None]:
    """Write ``out`` (.html) and, when Chromium is installed, the PDF beside it. Returns both paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(data, tz=tz), encoding="utf-8")
    if not pdf:
        return out, None
    browser = find_chromium()
    if browser is None:
        return out, None
    pdf_path = out.with_suffix(".pdf")
    print_pdf(out, pdf_path, browser=browser)
    return out, pdf_path


def timezone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise ConfigError(f"--timezone {name!r} is unknown: use an IANA name such as Europe/Berlin or UTC") from None
