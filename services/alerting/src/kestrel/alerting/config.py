"""Load and validate infra/alerting/rules.yaml: rules (Prometheus style), route, inhibit_rules and receivers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kestrel.alerting.checks import (
    duration_at,
    field_at,
    labels_at,
    list_at,
    mapping_at,
    matchers_at,
    positive,
    text_at,
)
from kestrel.alerting.expr import Condition, parse_condition, scope_of
from kestrel.alerting.matchers import ConfigError, Matcher, matchers_str

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

__all__ = ["Config", "ConfigError", "InhibitRule", "Receiver", "Route", "RouteOpts", "Rule", "load_config"]

KINDS = ("topic", "webhook", "alertmanager", "log")
SEVERITIES = ("info", "warning", "critical")
DEFAULT_STALE_MS = {"model": 3 * 3_600_000, "feature": 3 * 3_600_000, "platform": 5 * 60_000}
_TEMPLATE = re.compile(r"{{\s*(.*?)\s*}}")
_TEMPLATE_REF = re.compile(r"^\$(labels|values)\.([A-Za-z_][A-Za-z0-9_]*)(\s*\|\s*(humanizePercentage|humanize))?$")
_TEMPLATE_PLAIN = ("$report_url", "$report_id")
_ROUTE_FIELDS = {
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "matchers",
    "continue",
    "routes",
}


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    condition: Condition = field(repr=False)
    scope: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    stale_after_ms: int = DEFAULT_STALE_MS["model"]
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteOpts:
    receiver: str
    group_by: tuple[str, ...] = ("alertname",)
    group_by_all: bool = False
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 4 * 3_600_000
    labels: tuple[tuple[str, str], ...] = ()
    """Route labels (Alertmanager v0.35 `labels:`): a child's are merged over its parent's; sent as routeLabels.
    Plain strings: Alertmanager renders them as templates, Kestrel does not."""


@dataclass(frozen=True)
class Route:
    opts: RouteOpts
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    routes: tuple[Route, ...] = ()
    key: str = "{}"
    """Alertmanager's Route.Key(): the matchers of each route from the root, e.g. {}/{severity="critical"}."""
    path: str = "route"
    """Where the route is in the file, for error messages: route.routes[0]."""


@dataclass(frozen=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receiver:
    name: str
    kind: str
    url: str | None = None
    max_attempts: int = 5
    backoff_s: float = 2.0
    timeout_s: float = 10.0
    fallback: str | None = None


@dataclass(frozen=True)
class Config:
    rules: tuple[Rule, ...]
    route: Route
    inhibit_rules: tuple[InhibitRule, ...]
    receivers: dict[str, Receiver]
    fallback_receiver: str | None = None
    external_url: str = ""
    report_url: str = ""
    """Template of a drift report's link, with {report_id}."""


def load_config(path: str | Path) -> Config:
    """Reads and validates the file; ConfigError names the rule, route or receiver and the field."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(data)


def parse_config(data: Any) -> Config:
    top = mapping_at(data, "config", {"global", "rules", "route", "inhibit_rules", "receivers", "fallback_receiver"})
    glob = mapping_at(top.get("global") or {}, "global", {"external_url", "report_url"})
    receivers = _receivers(top.get("receivers") or [])
    fallback = top.get("fallback_receiver")
    if fallback is not None and fallback not in receivers:
        raise ConfigError(f"fallback_receiver: unknown receiver {fallback!r}")
    if "route" not in top:
        raise ConfigError("route: missing (the root route names the default receiver)")
    route = _route(top["route"], None, "route", "{}", receivers)
    inhibit = tuple(_inhibit(r, i) for i, r in enumerate(list_at(top.get("inhibit_rules") or [], "inhibit_rules")))
    return Config(
        _rules(top.get("rules") or []), route, inhibit, receivers, fallback,
        str(glob.get("external_url", "")), str(glob.get("report_url", "")),
    )  # fmt: skip


def _rules(items: Any) -> tuple[Rule, ...]:
    rules = [_rule(item, i) for i, item in enumerate(list_at(items, "rules"))]
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"rule {rule.name!r}: alert: defined twice")
        seen.add(rule.name)
    return tuple(rules)


def _rule(item: Any, index: int) -> Rule:
    raw = mapping_at(item, f"rules[{index}]", None)
    name = raw.get("alert", raw.get("name"))
    where = f"rule {name!r}" if isinstance(name, str) and name else f"rules[{index}]"
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"{where}: alert: required, a name like FeatureDrift")
    known = {"alert", "name", "expr", "for", "keep_firing_for", "stale_after", "severity", "labels", "annotations"}
    mapping_at(raw, where, known)
    condition = field_at(where, "expr", lambda: parse_condition(text_at(raw.get("expr"), "required")))
    scope = field_at(where, "expr", lambda: scope_of(condition))
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    return Rule(
        name=name, expr=raw["expr"], condition=condition, scope=scope,
        for_ms=duration_at(raw, "for", where, 0),
        keep_firing_for_ms=duration_at(raw, "keep_firing_for", where, 0),
        stale_after_ms=positive(duration_at(raw, "stale_after", where, DEFAULT_STALE_MS[scope]), where, "stale_after"),
        severity=severity,
        labels=_rule_labels(raw.get("labels"), where),
        annotations=_annotations(raw.get("annotations"), where),
    )  # fmt: skip


def _rule_labels(raw: Any, where: str) -> dict[str, str]:
    labels = labels_at(raw, where, "labels")
    reserved = sorted(labels.keys() & {"alertname", "severity"})
    if reserved:
        raise ConfigError(f"{where}: labels.{reserved[0]}: set by the rule itself (use alert: and severity:)")
    return labels


def _annotations(raw: Any, where: str) -> dict[str, str]:
    annotations = labels_at(raw, where, "annotations")
    for key, text in annotations.items():
        for ref in _TEMPLATE.findall(text):
            if ref not in _TEMPLATE_PLAIN and not _TEMPLATE_REF.match(ref):
                raise ConfigError(
                    f"{where}: annotations.{key}: unknown template {{{{ {ref} }}}} (use $labels.NAME, $values.FIELD, "
                    "optionally | humanize or | humanizePercentage, $report_url or $report_id)"
                )
    return annotations


def _route(raw: Any, parent: RouteOpts | None, path: str, parent_key: str, receivers: Mapping[str, Receiver]) -> Route:
    known = {
        "receiver",
        "group_by",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "matchers",
        "continue",
        "routes",
        "labels",
    }
    data = mapping_at(raw, path, known)
    if parent is None and ("matchers" in data or "continue" in data):
        raise ConfigError(f"{path}: the root route takes no matchers and no continue (it matches every alert)")
    receiver = data.get("receiver", parent.receiver if parent else None)
    if receiver not in receivers:
        raise ConfigError(f"{path}: receiver: {'unknown receiver ' + repr(receiver) if receiver else 'required'}")
    opts = _route_opts(data, parent, path, receiver)
    matchers = matchers_at(data, "matchers", path)
    key = matchers_str(matchers) if parent is None else f"{parent_key}/{matchers_str(matchers)}"
    children = list_at(data.get("routes") or [], f"{path}.routes")
    routes = tuple(_route(c, opts, f"{path}.routes[{i}]", key, receivers) for i, c in enumerate(children))
    return Route(opts, matchers, bool(data.get("continue", False)), routes, key, path)


def _route_opts(data: Mapping[str, Any], parent: RouteOpts | None, path: str, receiver: str) -> RouteOpts:
    base = parent or RouteOpts(receiver)
    group_by, group_by_all = base.group_by, base.group_by_all
    if "group_by" in data:
        names = [str(n) for n in field_at(path, "group_by", lambda: list_at(data["group_by"], ""))]
        group_by_all = "..." in names
        if group_by_all and len(names) > 1:
            raise ConfigError(f"{path}: group_by: '...' groups by all labels and stands alone")
        group_by = () if group_by_all else tuple(names)
    return RouteOpts(
        receiver, group_by, group_by_all,
        duration_at(data, "group_wait", path, base.group_wait_ms),
        positive(duration_at(data, "group_interval", path, base.group_interval_ms), path, "group_interval"),
        positive(duration_at(data, "repeat_interval", path, base.repeat_interval_ms), path, "repeat_interval"),
        _route_labels(data, base.labels, path),
    )  # fmt: skip


def _route_labels(
    data: Mapping[str, Any], inherited: tuple[tuple[str, str], ...], path: str
) -> tuple[tuple[str, str], ...]:
    own = mapping_at(data.get("labels") or {}, f"{path}.labels", None)
    for name, value in own.items():
        if not _LABEL_NAME.fullmatch(str(name)) or not isinstance(value, str):
            raise ConfigError(f"{path}.labels.{name}: a label name ([a-zA-Z_][a-zA-Z0-9_]*) with a string value")
    return tuple(sorted((dict(inherited) | {str(k): v for k, v in own.items()}).items()))


def _inhibit(raw: Any, index: int) -> InhibitRule:
    where = f"inhibit_rules[{index}]"
    data = mapping_at(raw, where, {"source_matchers", "target_matchers", "equal"})
    source = matchers_at(data, "source_matchers", where)
    target = matchers_at(data, "target_matchers", where)
    if not source or not target:
        raise ConfigError(f"{where}: source_matchers and target_matchers: both required")
    return InhibitRule(source, target, tuple(str(n) for n in list_at(data.get("equal") or [], f"{where}.equal")))


def _receivers(items: Any) -> dict[str, Receiver]:
    receivers: dict[str, Receiver] = {}
    for index, raw in enumerate(list_at(items, "receivers")):
        receiver = _receiver(raw, index)
        if receiver.name in receivers:
            raise ConfigError(f"receiver {receiver.name!r}: name: defined twice")
        receivers[receiver.name] = receiver
    for receiver in receivers.values():
        _check_fallback(receiver, receivers)
    return receivers


def _receiver(raw: Any, index: int) -> Receiver:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    where = f"receiver {name!r}" if name else f"receivers[{index}]"
    data = mapping_at(raw, where, {"name", "kind", "url", "max_attempts", "backoff", "timeout", "fallback"})
    if not name:
        raise ConfigError(f"{where}: name: required")
    if data.get("kind") not in KINDS:
        raise ConfigError(f"{where}: kind: {data.get('kind')!r} is not one of {', '.join(KINDS)}")
    if data["kind"] in ("webhook", "alertmanager") and not str(data.get("url") or "").startswith(
        ("http://", "https://")
    ):
        raise ConfigError(f"{where}: url: an http(s) URL is required for kind {data['kind']}")
    attempts = data.get("max_attempts", 5)
    if not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise ConfigError(f"{where}: max_attempts: {attempts!r} must be an integer from 1 to 20")
    backoff = duration_at(data, "backoff", where, 2000) / 1000
    timeout = duration_at(data, "timeout", where, 10_000) / 1000
    if not 0.1 <= backoff <= 600 or not 0.1 <= timeout <= 300:
        raise ConfigError(f"{where}: backoff must be within 100ms..10m and timeout within 100ms..5m")
    return Receiver(str(name), data["kind"], data.get("url"), attempts, backoff, timeout, data.get("fallback"))


def _check_fallback(receiver: Receiver, receivers: Mapping[str, Receiver]) -> None:
    seen, current = {receiver.name}, receiver.fallback
    while current is not None:
        if current not in receivers:
            raise ConfigError(f"receiver {receiver.name!r}: fallback: unknown receiver {current!r}")
        if current in seen:
            raise ConfigError(f"receiver {receiver.name!r}: fallback: chain loops back to {current!r}")
        seen.add(current)
        current = receivers[current].fallback
