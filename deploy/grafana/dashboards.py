# ruff: noqa: S608  (queries are built from constants in this file; no outside input reaches them)
"""The CrampWatch Grafana dashboards, as code: ``python deploy/grafana/dashboards.py`` rewrites the JSON.

Why a small generator and not hand-edited JSON: every panel shares the data source, the InfluxQL target
shape and the units, and tests/integration/test_dashboards.py imports :func:`dashboards` to run every query
against a real influxd. The JSON it writes (provisioning/dashboards/crampwatch/*.json) is committed and
reviewed; a unit test fails if it differs from what this module generates.

Target: Grafana 11.6 (the image pinned in docker-compose.yml), dashboard ``schemaVersion`` 41, the
built-in InfluxDB data source in InfluxQL mode. What the detector writes (detector/sinks/influx.py):

    cramp_events     tags patient, device, type (cramp/spasm/plm); duration_s, confidence, peak_uv, subtype
                     (live also open/cancelled announcements without duration_s: panels keep to points with one)
    cramp_summary    tags patient, device, night; emg_rms_uv, acc_activity_g, data_received, fasciculations
    cramp_heartbeat  tags patient, device; data_received, silent_s, lag_s, rejected_frames (wall clock)
    cramp_device     tags patient, device; online, battery_pct, rssi_dbm, spool_frames, lost_samples, ...

A "night" runs from noon to noon UTC (the ``night`` tag is the date of its evening); nightly buckets are
``GROUP BY time(1d, 12h)`` for the same reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DATASOURCE_UID = "crampwatch-influxdb"
DS: dict[str, str] = {"type": "influxdb", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 41
OUT = Path(__file__).resolve().parent / "provisioning" / "dashboards" / "crampwatch"
NIGHT = "time(1d, 12h)"  # nightly buckets, noon to noon UTC

Json = dict[str, Any]

RED, ORANGE, GREEN, BLUE, GREY = "red", "orange", "green", "blue", "text"


def target(ref: str, query: str, *, table: bool = False, alias: str | None = None) -> Json:
    """One InfluxQL target in raw mode (what Grafana saves when you type the query)."""
    out: Json = {
        "datasource": DS,
        "refId": ref,
        "query": " ".join(query.split()),
        "rawQuery": True,
        "resultFormat": "table" if table else "time_series",
    }
    if alias:
        out["alias"] = alias
    return out


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def field_config(unit: str = "", *, decimals: int | None = None, **defaults: Any) -> Json:
    base: Json = {"unit": unit} if unit else {}
    if decimals is not None:
        base["decimals"] = decimals
    base.update(defaults)
    return {"defaults": base, "overrides": []}


def override(name: str, **props: Any) -> Json:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in props.items()],
    }


class Layout:
    """Hands out panel ids and grid positions, left to right on a 24-column grid."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def place(self, w: int, h: int) -> tuple[int, Json]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        panel_id, self.next_id = self.next_id, self.next_id + 1
        return panel_id, pos


def panel(
    layout: Layout,
    kind: str,
    title: str,
    targets: list[Json],
    *,
    w: int = 12,
    h: int = 8,
    description: str = "",
    fc: Json | None = None,
    options: Json | None = None,
    transformations: list[Json] | None = None,
) -> Json:
    panel_id, pos = layout.place(w, h)
    out: Json = {
        "id": panel_id,
        "type": kind,
        "title": title,
        "gridPos": pos,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": fc or field_config(),
        "options": options or {},
    }
    if description:
        out["description"] = description
    if transformations:
        out["transformations"] = transformations
    return out


def query_variable(name: str, label: str, query: str, *, sort: int = 1) -> Json:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "refresh": 2,  # on time range change
        "sort": sort,
        "includeAll": False,
        "multi": False,
        "hide": 0,
        "options": [],
    }


def dashboard(uid: str, title: str, description: str, panels: list[Json], **extra: Any) -> Json:
    out: Json = {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["crampwatch"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "browser",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "links": [
            {
                "type": "dashboards",
                "title": "CrampWatch",
                "tags": ["crampwatch"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": panels,
    }
    out.update(extra)
    return out


def _count(kind: str, alias: str, where: str = "") -> str:
    return (
        f'SELECT count("duration_s") AS "{alias}" FROM "cramp_events" '
        f'WHERE "type" = \'{kind}\' {where} AND $timeFilter GROUP BY "patient"'
    )


# -- Patients overview -------------------------------------------------------------------------------


def patients_overview() -> Json:
    lay = Layout()
    table = panel(
        lay,
        "table",
        "Last night, per patient (most cramp minutes first)",
        [
            target(
                "A",
                """SELECT count("duration_s") AS "Cramps", sum("duration_s") / 60 AS "Cramp minutes",
                max("duration_s") / 60 AS "Longest cramp (min)" FROM "cramp_events"
                WHERE "type" = 'cramp' AND $timeFilter GROUP BY "patient\"""",
                table=True,
            ),
            target("B", _count("spasm", "Spasms"), table=True),
            target("C", _count("plm", "Leg movements (PLM)"), table=True),
            target(
                "D",
                """SELECT mean("data_received") * 100 AS "Data coverage %",
                count("data_received") / 3600 AS "Hours recorded", sum("fasciculations") AS "Twitches"
                FROM "cramp_summary" WHERE $timeFilter GROUP BY "patient\"""",
                table=True,
            ),
            target(
                "E",
                """SELECT last("online") AS "Sensor", last("battery_pct") AS "Battery %" FROM "cramp_device"
                WHERE $timeFilter GROUP BY "patient\"""",
                table=True,
            ),
        ],
        w=24,
        h=12,
        description=(
            "One row per patient over the chosen time range (default: the last 24 hours). PLM index is leg "
            "movements per hour recorded. Red cells need a look: coverage under 90 %, battery under 20 %, "
            "sensor off. A patient with no events shows an empty cell, which means none."
        ),
        fc={
            "defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}, "noValue": "0"},
            "overrides": [
                override("Cramp minutes", decimals=1, unit="m"),
                override("Longest cramp (min)", decimals=1, unit="m"),
                override("Hours recorded", decimals=1, unit="h"),
                override("PLM index (per hour)", decimals=1),
                override(
                    "Data coverage %",
                    decimals=1,
                    unit="percent",
                    thresholds=thresholds((None, RED), (90, GREEN)),
                    custom__cellOptions={"type": "color-background"},
                ),
                override(
                    "Battery %",
                    unit="percent",
                    thresholds=thresholds((None, RED), (20, GREEN)),
                    custom__cellOptions={"type": "color-background"},
                    noValue="unknown",
                ),
                override(
                    "Sensor",
                    mappings=[
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "off", "color": RED, "index": 0},
                                "1": {"text": "streaming", "color": GREEN, "index": 1},
                            },
                        }
                    ],
                    custom__cellOptions={"type": "color-text"},
                    noValue="no status",
                ),
                override(
                    "patient",
                    displayName="Patient",
                    links=[
                        {
                            "title": "Open this patient's night",
                            "url": "/d/crampwatch-night?var-patient=${__value.raw}&${__url_time_range}",
                        }
                    ],
                ),
            ],
        },
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}},
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "calculateField",
                "options": {
                    "mode": "binary",
                    "alias": "PLM index (per hour)",
                    "binary": {"left": "Leg movements (PLM)", "operator": "/", "right": "Hours recorded"},
                    "replaceFields": False,
                },
            },
            {"id": "organize", "options": {"excludeByName": {"Time": True}, "indexByName": {"patient": 0}}},
            {"id": "sortBy", "options": {"sort": [{"field": "Cramp minutes", "desc": True}]}},
        ],
    )
    stats = [
        panel(
            lay,
            "stat",
            "Patients recorded",
            [
                target(
                    "A",
                    """SELECT count("n") AS "Patients" FROM (SELECT count("data_received") AS "n"
                    FROM "cramp_summary" WHERE $timeFilter GROUP BY "patient")""",
                    table=True,
                )
            ],
            w=8,
            h=4,
        ),
        panel(
            lay,
            "stat",
            "Cramps, all patients",
            [
                target(
                    "A",
                    """SELECT count("duration_s") AS "Cramps" FROM "cramp_events"
                    WHERE "type" = 'cramp' AND $timeFilter""",
                    table=True,
                )
            ],
            w=8,
            h=4,
        ),
        panel(
            lay,
            "stat",
            "Patients with coverage under 90 %",
            [
                target(
                    "A",
                    """SELECT count("c") AS "Patients" FROM (SELECT mean("data_received") * 100 AS "c"
                    FROM "cramp_summary" WHERE $timeFilter GROUP BY "patient") WHERE "c" < 90""",
                    table=True,
                )
            ],
            w=8,
            h=4,
            fc=field_config(noValue="0", thresholds=thresholds((None, GREEN), (1, RED))),
        ),
    ]
    return dashboard(
        "crampwatch-patients",
        "CrampWatch: patients overview",
        "How each patient's last night went, and whether the data can be trusted.",
        [*stats, table],
    )


# -- Night timeline ----------------------------------------------------------------------------------

_P = "\"patient\" = '$patient'"
_PN = "\"patient\" = '$patient' AND \"night\" = '$night'"


def _event_row(kind: str, label: str) -> Json:
    return target(
        kind[0].upper(),
        f"""SELECT max("duration_s") AS "{label}" FROM "cramp_events"
        WHERE "type" = '{kind}' AND {_P} AND $timeFilter GROUP BY time($__interval) fill(0)""",
    )


def _present(label: str, color: str) -> Json:
    return override(
        label,
        mappings=[
            {"type": "value", "options": {"0": {"text": " ", "color": "transparent", "index": 0}}},
            {"type": "range", "options": {"from": 0.001, "to": 1e9, "result": {"text": label, "color": color}}},
        ],
    )


def night_timeline() -> Json:
    lay = Layout()
    state = panel(
        lay,
        "state-timeline",
        "What happened: cramps, spasms, leg movements, gaps, sensor off",
        [
            _event_row("cramp", "Cramp"),
            _event_row("spasm", "Spasm"),
            target(
                "P",
                f"""SELECT max("duration_s") AS "Leg movement (PLM)" FROM "cramp_events"
                WHERE "type" = 'plm' AND {_P} AND $timeFilter GROUP BY time($__interval) fill(0)""",
            ),
            target(
                "D",
                f"""SELECT mean("data_received") AS "Data" FROM "cramp_summary"
                WHERE {_PN} AND $timeFilter GROUP BY time($__interval) fill(-1)""",
            ),
        ],
        w=24,
        h=7,
        description="Each row is one kind of event. 'Data' is grey where the sensor sent nothing at all, "
        "orange where part of the data was lost, green where it all arrived.",
        fc={
            "defaults": {"custom": {"fillOpacity": 80, "lineWidth": 0}, "color": {"mode": "thresholds"}},
            "overrides": [
                _present("Cramp", RED),
                _present("Spasm", ORANGE),
                _present("Leg movement (PLM)", BLUE),
                override(
                    "Data",
                    mappings=[
                        {"type": "value", "options": {"-1": {"text": "sensor off", "color": GREY, "index": 0}}},
                        {
                            "type": "range",
                            "options": {"from": 0, "to": 0.999, "result": {"text": "gap", "color": ORANGE}},
                        },
                        {
                            "type": "range",
                            "options": {"from": 0.999, "to": 1, "result": {"text": "recorded", "color": GREEN}},
                        },
                    ],
                ),
            ],
        },
        options={
            "showValue": "never",
            "mergeValues": True,
            "rowHeight": 0.8,
            "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom", "calcs": []},
        },
    )
    emg = panel(
        lay,
        "timeseries",
        "Muscle activity (EMG, RMS)",
        [
            target(
                "A",
                f"""SELECT mean("emg_rms_uv") FROM "cramp_summary" WHERE {_PN} AND $timeFilter
                GROUP BY time($__interval), "device" fill(null)""",
                alias="EMG $tag_device",
            )
        ],
        w=24,
        h=8,
        description="Root-mean-square EMG amplitude, in microvolts, averaged per plotted point. Cramps show "
        "as long high plateaus. Red marks are cramps, orange spasms (annotations).",
        fc=field_config("µV", decimals=0, custom={"spanNulls": False, "fillOpacity": 10}),
    )
    acc = panel(
        lay,
        "timeseries",
        "Leg movement (accelerometer activity)",
        [
            target(
                "A",
                f"""SELECT mean("acc_activity_g") FROM "cramp_summary" WHERE {_PN} AND $timeFilter
                GROUP BY time($__interval), "device" fill(null)""",
                alias="movement $tag_device",
            )
        ],
        w=16,
        h=7,
        description="How much the leg moved, in g (acceleration with gravity removed).",
        fc=field_config("g", decimals=3, custom={"spanNulls": False}),
    )
    coverage = panel(
        lay,
        "stat",
        "Data coverage this night",
        [
            target(
                "A",
                f"""SELECT mean("data_received") * 100 AS "Coverage" FROM "cramp_summary"
                WHERE {_PN} AND $timeFilter""",
            )
        ],
        w=8,
        h=7,
        description="Share of the recorded seconds whose data arrived complete.",
        fc=field_config("percent", decimals=1, thresholds=thresholds((None, RED), (90, GREEN))),
    )
    events = panel(
        lay,
        "table",
        "Events",
        [
            target(
                "A",
                f"""SELECT "type" AS "Event", "duration_s" AS "Duration", "confidence" * 100 AS "Confidence",
                "peak_uv" AS "Peak EMG", "subtype" AS "Kind" FROM "cramp_events"
                WHERE {_P} AND "duration_s" >= 0 AND $timeFilter""",
                table=True,
            )
        ],
        w=24,
        h=9,
        fc={
            "defaults": {},
            "overrides": [
                override("Duration", unit="s", decimals=1),
                override("Confidence", unit="percent", decimals=0),
                override("Peak EMG", unit="µV", decimals=0),
                override("Time", displayName="Start", unit="dateTimeAsLocal"),
            ],
        },
        options={"showHeader": True, "sortBy": [{"displayName": "Start", "desc": False}]},
    )
    annotations = [
        {
            "name": "Grafana annotations",
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "type": "dashboard",
        },
        *(
            {
                "name": name,
                "datasource": DS,
                "enable": enable,
                "iconColor": color,
                "target": {
                    # AnnotationTarget's own fields (used by the "grafana" data source) ...
                    "limit": 100,
                    "matchAny": False,
                    "tags": [],
                    "type": "tags",
                    # ... and the InfluxDB data source's annotation query.
                    "query": " ".join(
                        f"""SELECT "duration_s", "confidence" FROM "cramp_events"
                        WHERE "type" = '{kind}' AND {_P} AND "duration_s" >= 0 AND $timeFilter""".split()
                    ),
                    "rawQuery": True,
                    "textColumn": "duration_s",
                    "tagsColumn": "type",
                },
            }
            for name, kind, color, enable in (
                ("Cramps", "cramp", RED, True),
                ("Spasms", "spasm", ORANGE, True),
                ("Leg movements (PLM)", "plm", BLUE, False),
            )
        ),
    ]
    variables = [
        query_variable("patient", "Patient", 'SHOW TAG VALUES FROM "cramp_summary" WITH KEY = "patient"'),
        query_variable(
            "night",
            "Night of",
            'SHOW TAG VALUES FROM "cramp_summary" WITH KEY = "night" WHERE "patient" = \'$patient\'',
            sort=2,  # newest first
        ),
    ]
    return dashboard(
        "crampwatch-night",
        "CrampWatch: night timeline",
        "One patient's night: muscle activity, leg movement, and every detected event. Pick the patient and "
        "the night (the date of its evening); set the time range to cover that night.",
        [state, emg, acc, coverage, events],
        annotations={"list": annotations},
        templating={"list": variables},
        time={"from": "now-24h", "to": "now"},
    )


# -- Trends ------------------------------------------------------------------------------------------


def _nightly(ref: str, select: str, measurement: str, where: str, alias: str) -> Json:
    where = f"{where} AND " if where else ""
    return target(
        ref,
        f'SELECT {select} AS "{alias}" FROM "{measurement}" WHERE {where}{_P} AND $timeFilter GROUP BY {NIGHT} fill(0)',
    )


def _spread(ref: str, inner: str, label: str) -> Json:
    return target(
        ref,
        f"""SELECT mean("n") AS "{label}: mean", stddev("n") AS "{label}: spread (SD)",
        min("n") AS "{label}: lowest", max("n") AS "{label}: highest" FROM ({inner})""",
        table=True,
    )


def trends() -> Json:
    lay = Layout()
    bars = {"drawStyle": "bars", "fillOpacity": 60, "barAlignment": 0}
    cramps = panel(
        lay,
        "timeseries",
        "Cramps per night",
        [_nightly("A", 'count("duration_s")', "cramp_events", "\"type\" = 'cramp'", "Cramps")],
        fc=field_config("none", decimals=0, custom=bars),
    )
    minutes = panel(
        lay,
        "timeseries",
        "Cramp minutes per night",
        [_nightly("A", 'sum("duration_s") / 60', "cramp_events", "\"type\" = 'cramp'", "Cramp minutes")],
        fc=field_config("m", decimals=1, custom=bars),
    )
    plm = panel(
        lay,
        "timeseries",
        "PLM index per night (leg movements per hour recorded)",
        [
            _nightly("A", 'count("duration_s")', "cramp_events", "\"type\" = 'plm'", "Leg movements"),
            _nightly("B", 'count("data_received") / 3600', "cramp_summary", "", "Hours"),
        ],
        fc=field_config("none", decimals=1, custom=bars),
        transformations=[
            {"id": "joinByField", "options": {"byField": "Time", "mode": "outer"}},
            {
                "id": "calculateField",
                "options": {
                    "mode": "binary",
                    "alias": "PLM index",
                    "binary": {"left": "Leg movements", "operator": "/", "right": "Hours"},
                    "replaceFields": True,
                },
            },
        ],
    )
    coverage = panel(
        lay,
        "timeseries",
        "Data coverage per night",
        [
            target(
                "A",
                f"""SELECT mean("data_received") * 100 AS "Coverage" FROM "cramp_summary"
                WHERE {_P} AND $timeFilter GROUP BY {NIGHT} fill(none)""",
            )
        ],
        fc=field_config(
            "percent",
            decimals=1,
            min=0,
            max=100,
            thresholds=thresholds((None, RED), (90, GREEN)),
            custom={"thresholdsStyle": {"mode": "line"}, "drawStyle": "points", "pointSize": 8},
        ),
    )
    per_night = (
        'SELECT {agg} AS "n" FROM "cramp_events" WHERE "type" = \'cramp\' AND '
        + _P
        + f" AND $timeFilter GROUP BY {NIGHT} fill(0)"
    )
    spread = panel(
        lay,
        "table",
        "Night-to-night spread",
        [
            _spread("A", per_night.format(agg='count("duration_s")'), "Cramps per night"),
            _spread("B", per_night.format(agg='sum("duration_s") / 60'), "Cramp minutes per night"),
        ],
        w=24,
        h=5,
        description="Over the nights in the time range, nights without cramps counted as 0.",
        fc=field_config(decimals=1),
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    )
    return dashboard(
        "crampwatch-trends",
        "CrampWatch: trends",
        "One patient over weeks: cramps, cramp minutes, PLM index and data coverage per night.",
        [cramps, minutes, plm, coverage, spread],
        templating={
            "list": [query_variable("patient", "Patient", 'SHOW TAG VALUES FROM "cramp_summary" WITH KEY = "patient"')]
        },
        time={"from": "now-30d", "to": "now"},
        refresh="",
    )


# -- Fleet health ------------------------------------------------------------------------------------


def _per_device(ref: str, select: str, measurement: str) -> Json:
    return target(
        ref,
        f'SELECT {select} FROM "{measurement}" WHERE $timeFilter '
        'GROUP BY time($__interval), "patient", "device" fill(none)',
        alias="$tag_patient / $tag_device",
    )


def fleet_health() -> Json:
    lay = Layout()
    online = panel(
        lay,
        "stat",
        "Sensors streaming now",
        [
            target(
                "A",
                """SELECT sum("o") AS "Streaming" FROM (SELECT last("online") AS "o" FROM "cramp_device"
                WHERE $timeFilter GROUP BY "patient", "device")""",
            )
        ],
        w=6,
        h=5,
    )
    silent = panel(
        lay,
        "stat",
        "Recording sensors silent over 2 min",
        [
            target(
                "A",
                """SELECT count("s") AS "Silent" FROM (SELECT last("silent_s") AS "s" FROM "cramp_heartbeat"
                WHERE time > now() - 5m GROUP BY "patient", "device") WHERE "s" > 120""",
            )
        ],
        w=6,
        h=5,
        fc=field_config(noValue="0", thresholds=thresholds((None, GREEN), (1, RED))),
    )
    table = panel(
        lay,
        "table",
        "Devices",
        [
            target(
                "A",
                """SELECT last("online") AS "Streaming", last("battery_pct") AS "Battery %",
                last("rssi_dbm") AS "RSSI (dBm)", last("spool_frames") AS "Spool backlog (frames)",
                last("lost_samples") AS "Samples lost", last("queue_drops") AS "Frames dropped",
                last("coverage_pct") AS "Coverage this hour %" FROM "cramp_device" WHERE $timeFilter
                GROUP BY "patient", "device\"""",
                table=True,
            ),
            target(
                "B",
                """SELECT last("silent_s") AS "Silent (s)", last("lag_s") AS "Detector lag (s)",
                last("rejected_frames") AS "Frames rejected" FROM "cramp_heartbeat" WHERE $timeFilter
                GROUP BY "patient", "device\"""",
                table=True,
            ),
        ],
        w=12,
        h=10,
        fc={
            "defaults": {},
            "overrides": [
                override("Battery %", thresholds=thresholds((None, RED), (20, GREEN))),
                override(
                    "Streaming",
                    mappings=[{"type": "value", "options": {"0": {"text": "no"}, "1": {"text": "yes"}}}],
                ),
            ],
        },
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    )
    battery = panel(
        lay,
        "timeseries",
        "Battery",
        [_per_device("A", 'mean("battery_pct")', "cramp_device")],
        fc=field_config("percent", min=0, max=100),
    )
    rssi = panel(
        lay,
        "timeseries",
        "Radio signal (RSSI)",
        [_per_device("A", 'mean("rssi_dbm")', "cramp_device")],
        fc=field_config("dBm"),
    )
    spool = panel(
        lay,
        "timeseries",
        "Spool backlog (frames waiting for the broker)",
        [_per_device("A", 'max("spool_frames")', "cramp_device")],
        fc=field_config("none"),
    )
    lost = panel(
        lay,
        "timeseries",
        "Frames lost or rejected",
        [
            _per_device("A", 'max("lost_samples") AS "samples lost on the device"', "cramp_device"),
            _per_device("B", 'max("queue_drops") AS "frames dropped by the collector"', "cramp_device"),
            _per_device("C", 'max("rejected_frames") AS "frames rejected by the detector"', "cramp_heartbeat"),
        ],
        fc=field_config("none"),
    )
    for t in lost["targets"]:
        t["alias"] = "$tag_patient / $tag_device: $col"
    lag = panel(
        lay,
        "timeseries",
        "Detector lag (data time to written)",
        [_per_device("A", 'max("lag_s")', "cramp_heartbeat")],
        fc=field_config("s"),
    )
    return dashboard(
        "crampwatch-fleet",
        "CrampWatch: fleet health",
        "Are the sensors, collectors and the detector working: streaming, battery, radio, backlog, losses, lag.",
        [online, silent, table, battery, rssi, spool, lost, lag],
        time={"from": "now-6h", "to": "now"},
        refresh="30s",
    )


def dashboards() -> dict[str, Json]:
    """File name -> dashboard JSON."""
    return {
        "patients-overview.json": patients_overview(),
        "night-timeline.json": night_timeline(),
        "trends.json": trends(),
        "fleet-health.json": fleet_health(),
    }


def render(board: Json) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in dashboards().items():
        (OUT / name).write_text(render(board))
        print(f"wrote {OUT / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
