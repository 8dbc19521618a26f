"""Every dashboard, variable, annotation and alert query, run against influxd holding a live-path night.

Grafana cannot run here, so the queries are expanded the way its InfluxQL data source expands them
($timeFilter, $__interval, template variables) and sent to the real influxd 1.6.7 that the detector service
wrote to. Each must parse, return the series and columns it promises, and for the key panels the right
numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from crampwatch.recording import read_annotations
from tests.grafana import PROVISIONING, Query, aliases, dashboard_queries, expand, generator, group_tags
from tests.integration.conftest import DEVICE, LOW_BATTERY, PATIENT, SILENT, LiveNight

pytestmark = pytest.mark.integration

BOARDS: dict[str, dict[str, Any]] = generator().dashboards()
QUERIES: list[Query] = [q for board in BOARDS.values() for q in dashboard_queries(board)]
# Counts of things that are wrong: empty on a good night (Grafana shows the panel's "0"); they must still parse.
MAY_BE_EMPTY = ("/ Patients with coverage under 90 % /", "/ Recording sensors silent over 2 min /")


def _run(night: LiveNight, query: str) -> list[dict[str, Any]]:
    influxql = expand(
        query,
        start_ms=night.start_ns // 1_000_000 - 60_000,
        end_ms=night.end_ns // 1_000_000 + 60_000,
        variables={"patient": PATIENT, "night": night.night},
    )
    return night.query(influxql)


def _one(night: LiveNight, board: str, panel: str, ref: str = "A") -> list[dict[str, Any]]:
    for q in dashboard_queries(BOARDS[board]):
        if q.where.endswith(f" / {panel} / {ref}"):
            return _run(night, q.text)
    raise AssertionError(f"no panel {panel!r} {ref} in {board}")


def test_every_query_is_covered() -> None:
    assert len(QUERIES) >= 35
    titles = {b["title"] for b in BOARDS.values()}
    assert titles == {
        "CrampWatch: patients overview",
        "CrampWatch: night timeline",
        "CrampWatch: trends",
        "CrampWatch: fleet health",
    }


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_query_returns_its_series(live_night: LiveNight, query: Query) -> None:
    rows = _run(live_night, query.text)
    if any(m in query.where for m in MAY_BE_EMPTY):
        return
    assert rows, f"{query.where}: no rows for {query.text}"
    if query.text.startswith("SHOW TAG VALUES"):
        return
    columns = set().union(*(r.keys() for r in rows))
    missing = [a for a in aliases(query.text) if a not in columns]
    assert not missing, f"{query.where}: columns {missing} not in {sorted(columns)}"
    for tag in group_tags(query.text):
        assert all(tag in r for r in rows), f"{query.where}: series not grouped by {tag}"
    if "patient" in group_tags(query.text) and "cramp_events" in query.text:
        assert {r["patient"] for r in rows} == {PATIENT}


def test_variables_list_the_patients_and_the_night(live_night: LiveNight) -> None:
    variables = {v["name"]: v for v in BOARDS["night-timeline.json"]["templating"]["list"]}
    patients = {r["value"] for r in _run(live_night, variables["patient"]["query"])}
    assert {PATIENT, SILENT[0]} <= patients
    nights = [r["value"] for r in _run(live_night, variables["night"]["query"])]
    assert nights == [live_night.night]


def test_overview_numbers_match_the_events_written(live_night: LiveNight) -> None:
    cramps = [e for e in live_night.events if e.type == "cramp" and e.patient == PATIENT]
    truth = [a for a in read_annotations(live_night.truth) if a.type == "cramp"]
    assert len(cramps) == len(truth) >= 1
    board, panel = "patients-overview.json", "Last night, per patient (most cramp minutes first)"
    [row] = _one(live_night, board, panel, "A")
    assert row["Cramps"] == len(cramps)
    assert row["Cramp minutes"] == pytest.approx(sum(e.duration_s for e in cramps) / 60, abs=0.01)
    assert row["Longest cramp (min)"] == pytest.approx(max(e.duration_s for e in cramps) / 60, abs=0.01)
    coverage = {r["patient"]: r for r in _one(live_night, board, panel, "D")}
    assert coverage[PATIENT]["Data coverage %"] > 95
    assert coverage[PATIENT]["Hours recorded"] == pytest.approx(600 / 3600, abs=0.002)
    battery = {r["patient"]: r["Battery %"] for r in _one(live_night, board, panel, "E")}
    assert battery == {PATIENT: 79, LOW_BATTERY[0]: 15}


def test_night_timeline_shows_events_and_data(live_night: LiveNight) -> None:
    board = "night-timeline.json"
    state = "What happened: cramps, spasms, leg movements, gaps, sensor off"
    cramp_rows = [r for r in _one(live_night, board, state, "C") if r["Cramp"] > 0]
    assert cramp_rows, "the cramp row of the state timeline is empty"
    data = {r["Data"] for r in _one(live_night, board, state, "D")}
    assert 1 in data and -1 in data, "recorded seconds and 'sensor off' buckets around the night"
    events = _one(live_night, board, "Events")
    assert {r["Event"] for r in events} >= {"cramp", "spasm"}


def test_fleet_health_sees_heartbeats_and_status(live_night: LiveNight) -> None:
    board = "fleet-health.json"
    heartbeat = {(r["patient"], r["device"]): r for r in _one(live_night, board, "Devices", "B")}
    assert heartbeat[SILENT]["Silent (s)"] > 3, "the quiet sensor's silence is an explicit, growing value"
    assert (PATIENT, DEVICE) in heartbeat
    devices = {(r["patient"], r["device"]): r for r in _one(live_night, board, "Devices", "A")}
    assert devices[(PATIENT, DEVICE)]["Battery %"] == 79 and devices[(PATIENT, DEVICE)]["Samples lost"] == 12
    quiet = live_night.query(
        f"SELECT data_received FROM cramp_heartbeat WHERE patient = '{SILENT[0]}' ORDER BY time DESC LIMIT 1"
    )
    assert quiet[0]["data_received"] == 0


# -- alert rules -----------------------------------------------------------------------------------

RULES = [
    r for g in yaml.safe_load((PROVISIONING / "alerting" / "crampwatch.yml").read_text())["groups"] for r in g["rules"]
]

_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "last": lambda v: v[-1],
    "max": max,
    "min": min,
    "mean": lambda v: sum(v) / len(v),
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {"gt": lambda x, t: x > t, "lt": lambda x, t: x < t}


def _evaluate(night: LiveNight, rule: dict[str, Any]) -> dict[tuple[str, ...], bool]:
    """Run query A for the rule's relative time range (now-based), reduce (B) and threshold (C) per series."""
    steps = {d["refId"]: d for d in rule["data"]}
    a = steps["A"]
    now_ms = night.end_ns // 1_000_000
    influxql = expand(
        a["model"]["query"],
        start_ms=now_ms - a["relativeTimeRange"]["from"] * 1000,
        end_ms=now_ms - a["relativeTimeRange"]["to"] * 1000,
        variables={},
    )
    rows = night.query(influxql)
    reducer = _REDUCE[steps["B"]["model"]["reducer"]]
    evaluator = steps["C"]["model"]["conditions"][0]["evaluator"]
    series: dict[tuple[str, ...], list[float]] = {}
    for r in rows:
        key = tuple(str(r[t]) for t in ("patient", "device") if t in r)
        value = next(v for k, v in r.items() if k not in ("time", "patient", "device"))
        if value is not None:
            series.setdefault(key, []).append(float(value))
    return {k: _COMPARE[evaluator["type"]](reducer(v), evaluator["params"][0]) for k, v in series.items()}


def test_alert_rules_fire_where_they_should(live_night: LiveNight) -> None:
    by_uid = {r["uid"]: r for r in RULES}
    battery = _evaluate(live_night, by_uid["crampwatch-battery-low"])
    assert battery == {LOW_BATTERY: True, (PATIENT, DEVICE): False}
    coverage = _evaluate(live_night, by_uid["crampwatch-coverage-low"])
    assert coverage[(PATIENT,)] is False
    silent = _evaluate(live_night, by_uid["crampwatch-sensor-silent"])
    assert silent == {SILENT: False, (PATIENT, DEVICE): False}, "silent for seconds only: under 2 min"
    long_cramp = _evaluate(live_night, by_uid["crampwatch-long-cramp"])
    assert set(long_cramp) == {(PATIENT,)}
    many = _evaluate(live_night, by_uid["crampwatch-many-cramps"])
    assert set(many) == {(PATIENT,)}
