"""Helpers for the Grafana checks: load the dashboard generator, list every query, expand Grafana's macros.

Grafana expands ``$timeFilter``, ``$__interval`` and template variables before the InfluxQL reaches the
database; these helpers do the same so the queries can run against a real influxd.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
PROVISIONING = GRAFANA / "provisioning"


def generator() -> ModuleType:
    """deploy/grafana/dashboards.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("crampwatch_dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Query:
    where: str  # "dashboard / panel / refId", for messages
    text: str


def dashboard_queries(board: dict[str, Any]) -> list[Query]:
    """Every panel target, template variable and annotation query of a dashboard."""
    name = board["title"]
    out = [
        Query(f"{name} / {p['title']} / {t['refId']}", t["query"])
        for p in board["panels"]
        for t in p.get("targets", [])
    ]
    out += [
        Query(f"{name} / variable {v['name']}", v["query"])
        for v in board.get("templating", {}).get("list", [])
        if v["type"] == "query"
    ]
    out += [
        Query(f"{name} / annotation {a['name']}", a["target"]["query"])
        for a in board.get("annotations", {}).get("list", [])
        if a.get("target", {}).get("query")
    ]
    return out


def expand(query: str, *, start_ms: int, end_ms: int, interval: str = "10s", variables: dict[str, str]) -> str:
    """What Grafana's InfluxQL data source sends for ``query``."""
    out = query.replace("$timeFilter", f"time >= {start_ms}ms AND time <= {end_ms}ms")
    out = out.replace("$__interval", interval)
    for name in sorted(variables, key=len, reverse=True):
        out = out.replace(f"${name}", variables[name])
    left = re.findall(r"\$\w+", out)
    assert not left, f"unexpanded macros {left} in {out}"
    return out


def top_level(query: str) -> str:
    """The query with parenthesised parts (subqueries, function arguments) removed; quoted names kept."""
    depth, quoted, out = 0, False, []
    for ch in query:
        if ch == '"':
            quoted = not quoted
        elif ch == "(" and not quoted:
            depth += 1
            continue
        elif ch == ")" and not quoted:
            depth -= 1
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


def aliases(query: str) -> list[str]:
    """Column names the outer SELECT promises (``AS "X"``)."""
    select = top_level(query).split(" FROM ")[0]
    return re.findall(r'AS "([^"]+)"', select)


def group_tags(query: str) -> list[str]:
    """Tags of the outer GROUP BY."""
    outer = top_level(query)
    if " GROUP BY " not in outer:
        return []
    return re.findall(r'"(\w+)"', outer.split(" GROUP BY ")[1])
