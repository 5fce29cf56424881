"""What the Grafana dashboard asks Prometheus for, and whether a worker exports it.

The PromQL reading here covers what dashboards write: selectors with label matchers, range
and subquery brackets, aggregations with ``by (...)`` before their argument, functions,
binary operators, string and number literals, and Grafana's ``$variables``. It finds metric
names as the identifiers that are neither called (``rate(``), nor keywords, nor inside a
label matcher or a grouping clause. Exported names come from a real exposition (the
``prometheus_client`` text parser), with each family's sample names: ``_total`` for
counters; ``_bucket``, ``_sum``, ``_count`` for histograms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "DASHBOARD",
    "Exported",
    "Query",
    "dashboard_queries",
    "exported",
    "metric_names",
    "problems",
]

DASHBOARD = Path(__file__).parents[1] / "ops" / "grafana" / "dashboards" / "deskstream.json"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACKETS = re.compile(r"\[[^\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SELECTOR = re.compile(rf"(?<![\w.])({_IDENT})\s*\{{([^}}]*)\}}")
_MATCHER_LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)\s*\(")
_TOKEN = re.compile(rf"(?<![\w.])({_IDENT})(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)
#: labels Prometheus adds at scrape time; a worker's exposition never has them
SCRAPE_LABELS = frozenset({"instance", "job"})


def _plain(expr: str) -> str:
    """The expression without literals, ranges and variables (nothing there names a metric)."""
    expr = _STRING.sub('""', expr)
    expr = _VARIABLE.sub("", expr)
    return _BRACKETS.sub("", expr)


def metric_names(expr: str) -> set[str]:
    """Every metric name ``expr`` reads."""
    plain = _GROUPING.sub("", _MATCHERS.sub("", _plain(expr)))
    return {
        name
        for name, called in _TOKEN.findall(plain)
        if not called and name.lower() not in _KEYWORDS
    }


def _matched(text: str, start: int) -> str:
    """The text inside the parenthesis opened just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise ValueError(f"unbalanced parentheses in {text!r}")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel, with what it expects of each metric's labels."""

    where: str
    expr: str

    @property
    def names(self) -> set[str]:
        return metric_names(self.expr)

    def label_uses(self) -> Iterator[tuple[str, frozenset[str]]]:
        """(metric, labels the query needs it to carry): its matchers, and the labels of
        every ``by (...)`` around it."""
        plain = _plain(self.expr)
        for name, matchers in _SELECTOR.findall(plain):
            yield name, frozenset(_MATCHER_LABEL.findall(matchers))
        for grouping in _BY.finditer(plain):
            labels = frozenset(label.strip() for label in grouping.group(1).split(",")) - {""}
            for name in metric_names(_matched(plain, grouping.end())):
                yield name, labels


def _targets(panels: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels:
        yield from ((panel, target) for target in panel.get("targets", []))
        yield from _targets(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every PromQL expression of every panel (rows' panels too)."""
    return [
        Query(f"panel {panel.get('id')} {panel.get('title')!r} {target.get('refId')}", expr)
        for panel, target in _targets(dashboard["panels"])
        if (expr := target.get("expr"))
    ]


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@dataclass
class Exported:
    """A worker's exposition: sample names, and the label names seen on each."""

    names: set[str] = field(default_factory=set)
    labels: dict[str, set[str]] = field(default_factory=dict)


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def exported(exposition: str) -> Exported:
    """Parse a ``/metrics`` answer; a family with no samples yet still names its samples."""
    found = Exported()
    for family in text_string_to_metric_families(exposition):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            found.names.add(family.name + suffix)
        for sample in family.samples:
            found.names.add(sample.name)
            found.labels.setdefault(sample.name, set()).update(sample.labels)
    return found


def problems(queries: list[Query], worker: Exported) -> list[str]:
    """What a dashboard asks for that the worker does not export: unknown metrics, and
    labels missing from a metric that has samples (one without samples cannot tell)."""
    found = []
    for query in queries:
        for name in sorted(query.names - worker.names):
            found.append(f"{query.where}: {name} is not exported (query: {query.expr})")
        for name, wanted in query.label_uses():
            have = worker.labels.get(name)
            if have is None or name not in worker.names:
                continue
            missing = wanted - have - SCRAPE_LABELS
            if missing:
                found.append(
                    f"{query.where}: {name} has no label {', '.join(sorted(missing))} "
                    f"(it has {', '.join(sorted(have)) or 'none'}; query: {query.expr})"
                )
    return found
