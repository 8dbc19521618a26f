"""Dashboards and provisioning, checked offline: generated == committed, uids cross-checked, types checked.

The type check uses Grafana's own published TypeScript types for the pinned version (npm
``@grafana/schema`` 11.6.0, the version of the grafana image in docker-compose.yml) and ``tsc --strict``.
They are installed once into a cache folder (``$CRAMPWATCH_NPM_CACHE``, default
``~/.cache/crampwatch/grafana-schema-11.6.0``) that later runs reuse; without npm the check is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.grafana import PROVISIONING, ROOT, generator

GRAFANA_VERSION = "11.6.0"
BOARDS: dict[str, dict[str, Any]] = generator().dashboards()
JSON_DIR = PROVISIONING / "dashboards" / "crampwatch"
CACHE = Path(
    os.environ.get("CRAMPWATCH_NPM_CACHE", Path.home() / ".cache" / "crampwatch" / f"grafana-schema-{GRAFANA_VERSION}")
)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _datasources() -> dict[str, dict[str, Any]]:
    return {ds["uid"]: ds for ds in _yaml(PROVISIONING / "datasources" / "crampwatch.yml")["datasources"]}


def _uids_used(node: Any) -> set[str]:
    """Every datasource uid referenced anywhere in a dashboard."""
    found: set[str] = set()
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and ds.get("type") == "influxdb":
            found.add(ds["uid"])
        for value in node.values():
            found |= _uids_used(value)
    elif isinstance(node, list):
        for value in node:
            found |= _uids_used(value)
    return found


def test_committed_json_is_what_the_generator_writes() -> None:
    committed = {p.name for p in JSON_DIR.glob("*.json")}
    assert committed == set(BOARDS), "run: python deploy/grafana/dashboards.py"
    for name, board in BOARDS.items():
        assert (JSON_DIR / name).read_text() == generator().render(board), f"{name} is stale: regenerate it"


def test_grafana_version_matches_the_compose_file() -> None:
    image = _yaml(ROOT / "docker-compose.yml")["services"]["grafana"]["image"]
    assert image == f"grafana/grafana:{GRAFANA_VERSION}", "the dashboard schema check targets this version"


def test_dashboards_use_the_provisioned_datasource_and_are_unique() -> None:
    datasources = _datasources()
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for name, board in BOARDS.items():
        used = _uids_used(board)
        assert used and used <= set(datasources), f"{name} uses {used}, provisioned {set(datasources)}"
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{name} / {panel['title']} is wider than the grid"
            for t in panel["targets"]:
                assert t["rawQuery"] is True and t["query"].startswith(("SELECT", "SHOW"))
    ds = datasources["crampwatch-influxdb"]
    assert ds["type"] == "influxdb" and ds["jsonData"]["dbName"] and ds["jsonData"]["httpMode"] == "POST"


def test_dashboard_provider_points_at_the_json() -> None:
    [provider] = _yaml(PROVISIONING / "dashboards" / "crampwatch.yml")["providers"]
    assert provider["type"] == "file"
    mounted = "/etc/grafana/provisioning"  # docker-compose.yml mounts deploy/grafana/provisioning there
    path = Path(provider["options"]["path"])
    assert path.is_relative_to(mounted)
    assert (PROVISIONING / path.relative_to(mounted)).resolve() == JSON_DIR.resolve()
    grafana = _yaml(ROOT / "docker-compose.yml")["services"]["grafana"]
    assert any(v.startswith("./deploy/grafana/provisioning:" + mounted) for v in grafana["volumes"])


def test_alert_rules_are_well_formed() -> None:
    alerting = _yaml(PROVISIONING / "alerting" / "crampwatch.yml")
    assert alerting["apiVersion"] == 1
    datasources = _datasources()
    rules = [r for g in alerting["groups"] for r in g["rules"]]
    assert len({r["uid"] for r in rules}) == len(rules) >= 4
    for group in alerting["groups"]:
        assert group["orgId"] == 1 and group["folder"] and re.fullmatch(r"\d+[smh]", group["interval"])
    for rule in rules:
        assert len(rule["uid"]) <= 40 and rule["title"]
        steps = {d["refId"]: d for d in rule["data"]}
        assert rule["condition"] in steps
        assert rule["noDataState"] in ("OK", "NoData", "Alerting") and rule["execErrState"] in (
            "Error",
            "Alerting",
            "OK",
        )
        for ref, step in steps.items():
            assert step["model"]["refId"] == ref
            if step["datasourceUid"] == "__expr__":
                assert step["model"]["type"] in ("reduce", "threshold", "math")
                assert step["model"]["expression"] in steps
            else:
                assert step["datasourceUid"] in datasources, rule["uid"]
                assert step["relativeTimeRange"]["from"] > step["relativeTimeRange"]["to"] >= 0
                assert "$timeFilter" in step["model"]["query"] and step["model"]["rawQuery"] is True
    silent = next(r for r in rules if r["uid"] == "crampwatch-sensor-silent")
    query = silent["data"][0]["model"]["query"]
    assert "cramp_heartbeat" in query and silent["noDataState"] == "OK", "alert on the explicit series, not NoData"


# -- TypeScript check against @grafana/schema ---------------------------------------------------------

_TYPES = "@grafana/schema/dist/esm/raw"
_PANEL_OPTIONS = {
    "table": ("TableOptions", "table/panelcfg/x/TablePanelCfg_types.gen.js"),
    "stat": ("StatOptions", "stat/panelcfg/x/StatPanelCfg_types.gen.js"),
    "timeseries": ("TimeSeriesOptions", "timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen.js"),
    "state-timeline": ("StateTimelineOptions", "statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen.js"),
}


def _schema_modules() -> Path:
    modules = CACHE / "node_modules"
    if (modules / ".bin" / "tsc").exists() and (modules / "@grafana" / "schema").is_dir():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch @grafana/schema to type-check the dashboards")
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "package.json").write_text('{"private": true}\n')
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            f"@grafana/schema@{GRAFANA_VERSION}",
            "typescript@5",
        ],
        cwd=CACHE,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return modules


def test_dashboards_type_check_against_grafana_schema(tmp_path: Path) -> None:
    modules = _schema_modules()
    (tmp_path / "node_modules").symlink_to(modules)
    (tmp_path / "package.json").write_text('{"type": "module"}\n')
    lines = [
        "import type { Dashboard, AnnotationQuery, AnnotationTarget } "
        f'from "{_TYPES}/dashboard/x/dashboard_types.gen.js";',
        *(
            f'import type {{ Options as {name} }} from "{_TYPES}/composable/{path}";'
            for name, path in _PANEL_OPTIONS.values()
        ),
        # The generic schema types annotation targets for the "grafana" data source only; the InfluxDB data
        # source keeps its query there too. Everything else is checked as Grafana declares it.
        # JSON holds an enum's value ("absolute"), which TypeScript does not assign to the enum type
        # (ThresholdsMode); Json<T> turns each string enum into the union of its values, nothing else.
        "type Json<T> = T extends string ? `${T}` : T extends Array<infer U> ? Array<Json<U>> "
        ": T extends object ? { [K in keyof T]: Json<T[K]> } : T;",
        "type InfluxTarget = AnnotationTarget & "
        "{ query: string; rawQuery: boolean; textColumn?: string; tagsColumn?: string };",
        "type Annotation = Omit<AnnotationQuery, 'target'> & { target?: InfluxTarget };",
        "type Board = Omit<Dashboard, 'annotations'> & { annotations?: { list?: Array<Annotation> } };",
    ]
    for i, (name, board) in enumerate(BOARDS.items()):
        lines.append(f"// {name}")
        lines.append(f"export const board{i}: Json<Board> = {json.dumps(board)};")
        for panel in board["panels"]:
            type_name = _PANEL_OPTIONS[panel["type"]][0]
            lines.append(
                f"export const options{i}_{panel['id']}: Json<Partial<{type_name}>> = {json.dumps(panel['options'])};"
            )
    (tmp_path / "dashboards.ts").write_text("\n".join(lines) + "\n")
    tsc = [str(modules / ".bin" / "tsc"), "--strict", "--noEmit", "--skipLibCheck"]
    tsc += ["--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "dashboards.ts"]
    result = subprocess.run(tsc, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_check_catches_a_broken_dashboard(tmp_path: Path) -> None:
    """The check has teeth: a height given as a string is refused."""
    modules = _schema_modules()
    (tmp_path / "node_modules").symlink_to(modules)
    (tmp_path / "package.json").write_text('{"type": "module"}\n')
    board = json.loads(json.dumps(BOARDS["trends.json"]))
    board["panels"][0]["gridPos"]["h"] = "8"
    board.pop("annotations")
    (tmp_path / "bad.ts").write_text(
        f'import type {{ Dashboard }} from "{_TYPES}/dashboard/x/dashboard_types.gen.js";\n'
        f"export const b: Dashboard = {json.dumps(board)};\n"
    )
    tsc = [str(modules / ".bin" / "tsc"), "--strict", "--noEmit", "--skipLibCheck", "--module", "nodenext"]
    result = subprocess.run(
        [*tsc, "--moduleResolution", "nodenext", "bad.ts"], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert result.returncode != 0 and "Type 'string' is not assignable to type 'number'" in result.stdout, result.stdout
