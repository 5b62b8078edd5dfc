"""Static checks of Prometheus and Grafana beside compose: what they scrape, chart and alert on exists in the code."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compose_checks import address_hosts, mounts, providers, services

SERIES_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum", "_created"),
    "Summary": ("_count", "_sum", "_created"),
    "Info": ("_info",),
}
"""Series prometheus_client exposes per metric type (a Counter's name loses `_total` before its suffixes); its Enum is
left out, since enum.Enum("Name", "A B") reads the same."""
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"})
"""Series Prometheus records itself for every target."""


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _metric_definition(node: ast.AST) -> tuple[str, str] | None:
    """(type, name) of `Counter("name", "help", ...)` and the like; collections.Counter(x) has no help string."""
    if not isinstance(node, ast.Call) or _callee(node) not in SERIES_SUFFIXES or len(node.args) < 2:
        return None
    name, documentation = (a.value if isinstance(a, ast.Constant) else None for a in node.args[:2])
    return (_callee(node), name) if isinstance(name, str) and isinstance(documentation, str) else None


def exposed_series(kind: str, name: str) -> set[str]:
    base = name.removesuffix("_total") if kind == "Counter" else name
    return {base + suffix for suffix in SERIES_SUFFIXES[kind]}


def defined_series(files: Iterable[Path]) -> dict[str, Path]:
    """Every series the code's prometheus_client metrics expose, with the file that defines it."""
    found: dict[str, Path] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            definition = _metric_definition(node)
            found |= {series: path for series in exposed_series(*definition)} if definition else {}
    return found


def source_files(root: Path) -> list[Path]:
    """The Python sources of every workspace member (tests excluded)."""
    return sorted(p for pattern in ("libs/*/src/**/*.py", "services/*/src/**/*.py") for p in root.glob(pattern))


_PROMQL_NOISE = re.compile(
    r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'"  # strings
    r"|\{[^}]*\}|\[[^\]]*\]"  # label matchers; ranges and subqueries
    r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"  # label lists
)
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"})
_PROMQL_WORDS |= {"and", "or", "unless", "atan2", "inf", "nan", "start", "end"}


def promql_series(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions, keywords or label names."""
    bare = _PROMQL_NOISE.sub(" ", expr)
    return {name for name in _IDENTIFIER.findall(bare) if name.lower() not in _PROMQL_WORDS}


def unknown_series_problems(where: str, expr: str, known: Iterable[str]) -> list[str]:
    names = promql_series(expr)
    problems = [f"{where}: {name} is not a metric the code defines" for name in sorted(names - set(known))]
    return problems or ([] if names else [f"{where}: selects no metric: {expr!r}"])


# ---------------------------------------------------------------- Prometheus


@dataclass(frozen=True)
class Target:
    job: str
    host: str
    port: int | None


def scrape_targets(prometheus: Mapping[str, Any]) -> Iterator[Target]:
    """host:port of static targets, and name + port of DNS discovery (Docker's DNS answers A records)."""
    for job in prometheus.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, _, port = str(target).rpartition(":")
                yield Target(job["job_name"], host, int(port))
        for dns in job.get("dns_sd_configs") or []:
            port = dns.get("port") if dns.get("type") in ("A", "AAAA") else None
            yield from (Target(job["job_name"], name, port) for name in dns.get("names") or [])


def scrape_problems(
    prometheus: Mapping[str, Any], compose: Mapping[str, Any], serves: Callable[[str], set[int]]
) -> list[str]:
    """Every target is a compose service (or alias) and its port is that service's metrics port (`serves`)."""
    problems = []
    for target in scrape_targets(prometheus):
        answering = providers(compose, target.host)
        if target.port is None:
            problems.append(f"{target.job}: {target.host}: DNS discovery needs type A and a port")
        elif not answering:
            problems.append(f"{target.job}: {target.host} is not a compose service, hostname or alias")
        problems += [
            f"{target.job}: {name} serves metrics on {sorted(serves(name))}, not {target.port}"
            for name in answering
            if target.port is not None and target.port not in serves(name)
        ]
    return problems


def unscraped_problems(prometheus: Mapping[str, Any], compose: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    scraped = {name for target in scrape_targets(prometheus) for name in providers(compose, target.host)}
    return [f"{name}: no Prometheus job scrapes it" for name in names if name not in scraped]


def alerting_problems(prometheus: Mapping[str, Any], compose: Mapping[str, Any], receiver: str) -> list[str]:
    """Prometheus sends its alerts to the compose service `receiver` (the Alertmanager)."""
    configs = (prometheus.get("alerting") or {}).get("alertmanagers") or []
    hosts = {str(t).rpartition(":")[0] for c in configs for s in c.get("static_configs") or [] for t in s["targets"]}
    if not any(receiver in providers(compose, host) for host in hosts):
        return [f"Prometheus sends alerts to {sorted(hosts)}, not to {receiver}"]
    return []


def rule_problems(rules: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """Every alerting or recording rule selects metrics that exist."""
    return [
        problem
        for group in rules.get("groups") or []
        for rule in group.get("rules") or []
        for problem in unknown_series_problems(rule.get("alert") or rule.get("record") or "?", rule["expr"], known)
    ]


# ---------------------------------------------------------------- Grafana


def panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def _uid(ref: Any) -> str | None:
    return ref.get("uid") if isinstance(ref, Mapping) else ref


def dashboard_problems(dashboard: Mapping[str, Any], datasources: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """Panels have unique ids, a place and queries; each query's data source is provisioned (`datasources`: uid to
    type), and each PromQL query selects metrics that exist."""
    problems, ids = [], [p.get("id") for p in panels(dashboard) if p.get("type") != "row"]
    problems += [f"panel id {i} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1}, key=str)]
    for panel in (p for p in panels(dashboard) if p.get("type") != "row"):
        where = f"panel {panel.get('title')!r}"
        problems += [f"{where}: needs {key}" for key in ("id", "title", "gridPos", "targets") if not panel.get(key)]
        for target in panel.get("targets") or []:
            uid = _uid(target.get("datasource")) or _uid(panel.get("datasource"))
            if uid not in datasources:
                problems.append(f"{where}: data source {uid} is not provisioned")
            elif datasources[uid] == "prometheus":
                problems += unknown_series_problems(where, target.get("expr", ""), known)
    return problems


def sql_problems(dashboard: Mapping[str, Any], datasources: Mapping[str, str], tables: Iterable[str]) -> list[str]:
    """SQL queries read tables or views the migrations create."""
    problems = []
    for panel in panels(dashboard):
        for target in panel.get("targets") or []:
            uid = _uid(target.get("datasource")) or _uid(panel.get("datasource"))
            if "postgres" not in datasources.get(uid or "", ""):
                continue
            read = set(re.findall(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*)\b(?!\s*\()", target.get("rawSql", ""), re.I))
            problems += [
                f"panel {panel.get('title')!r}: reads {t}, no migration creates it" for t in read - set(tables)
            ]
            problems += [] if read else [f"panel {panel.get('title')!r}: its SQL reads no table"]
    return problems


def migration_tables(folder: Path) -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.sql")))
    pattern = r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)"
    return set(re.findall(pattern, text, re.I))


def datasource_types(provisioning: Mapping[str, Any]) -> dict[str, str]:
    return {d["uid"]: d["type"] for d in provisioning.get("datasources") or [] if d.get("uid")}


def datasource_problems(provisioning: Mapping[str, Any], compose: Mapping[str, Any]) -> list[str]:
    """Each data source has a uid (panels name it) and its URL names a compose service."""
    problems = []
    for source in provisioning.get("datasources") or []:
        url = str(source.get("url", ""))
        hosts = address_hosts(url if "://" in url else f"tcp://{url}")
        problems += [] if source.get("uid") else [f"data source {source.get('name')}: needs a uid"]
        problems += [
            f"data source {source.get('name')}: {h} is not a compose service"
            for h in hosts
            if not providers(compose, h)
        ]
    return problems


def provider_problems(
    provisioning: Mapping[str, Any], compose: Mapping[str, Any], base: Path, name: str, dashboards: Path
) -> list[str]:
    """A file provider of service `name` reads the repository's dashboards folder, bind-mounted at its path."""
    paths = [p["options"]["path"] for p in provisioning.get("providers") or [] if p.get("type", "file") == "file"]
    for kind, source, target in mounts(services(compose).get(name, {})):
        if kind == "bind" and target in paths and (base / source).resolve() == dashboards.resolve():
            return []
    return [f"{name}: no dashboard provider reads {dashboards} (providers read {paths})"]
