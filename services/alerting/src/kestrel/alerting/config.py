"""Load and validate infra/alerting/rules.yaml: rules (Prometheus style), route, inhibit_rules and receivers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kestrel.alerting.expr import Condition, parse_condition, scope_of
from kestrel.alerting.matchers import ConfigError, Matcher, matchers_str, parse_duration_ms, parse_matcher

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
T = TypeVar("T")


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
    top = _mapping(data, "config", {"global", "rules", "route", "inhibit_rules", "receivers", "fallback_receiver"})
    glob = _mapping(top.get("global") or {}, "global", {"external_url", "report_url"})
    receivers = _receivers(top.get("receivers") or [])
    fallback = top.get("fallback_receiver")
    if fallback is not None and fallback not in receivers:
        raise ConfigError(f"fallback_receiver: unknown receiver {fallback!r}")
    if "route" not in top:
        raise ConfigError("route: missing (the root route names the default receiver)")
    route = _route(top["route"], None, "route", "{}", receivers)
    inhibit = tuple(_inhibit(r, i) for i, r in enumerate(_list(top.get("inhibit_rules") or [], "inhibit_rules")))
    return Config(
        _rules(top.get("rules") or []), route, inhibit, receivers, fallback,
        str(glob.get("external_url", "")), str(glob.get("report_url", "")),
    )  # fmt: skip


def _rules(items: Any) -> tuple[Rule, ...]:
    rules = [_rule(item, i) for i, item in enumerate(_list(items, "rules"))]
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"rule {rule.name!r}: alert: defined twice")
        seen.add(rule.name)
    return tuple(rules)


def _rule(item: Any, index: int) -> Rule:
    raw = _mapping(item, f"rules[{index}]", None)
    name = raw.get("alert", raw.get("name"))
    where = f"rule {name!r}" if isinstance(name, str) and name else f"rules[{index}]"
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"{where}: alert: required, a name like FeatureDrift")
    known = {"alert", "name", "expr", "for", "keep_firing_for", "stale_after", "severity", "labels", "annotations"}
    _mapping(raw, where, known)
    condition = _field(where, "expr", lambda: parse_condition(_str(raw.get("expr"), "required")))
    scope = _field(where, "expr", lambda: scope_of(condition))
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    return Rule(
        name=name, expr=raw["expr"], condition=condition, scope=scope,
        for_ms=_duration(raw, "for", where, 0),
        keep_firing_for_ms=_duration(raw, "keep_firing_for", where, 0),
        stale_after_ms=_duration(raw, "stale_after", where, DEFAULT_STALE_MS[scope]),
        severity=severity,
        labels=_labels(raw.get("labels"), where, "labels"),
        annotations=_annotations(raw.get("annotations"), where),
    )  # fmt: skip


def _annotations(raw: Any, where: str) -> dict[str, str]:
    annotations = _labels(raw, where, "annotations")
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
    }
    data = _mapping(raw, path, known)
    if parent is None and ("matchers" in data or "continue" in data):
        raise ConfigError(f"{path}: the root route takes no matchers and no continue (it matches every alert)")
    receiver = data.get("receiver", parent.receiver if parent else None)
    if receiver not in receivers:
        raise ConfigError(f"{path}: receiver: {'unknown receiver ' + repr(receiver) if receiver else 'required'}")
    opts = _route_opts(data, parent, path, receiver)
    matchers = tuple(
        _field(path, "matchers", lambda: [parse_matcher(m) for m in _list(data.get("matchers") or [], "")])
    )
    key = matchers_str(matchers) if parent is None else f"{parent_key}/{matchers_str(matchers)}"
    children = _list(data.get("routes") or [], f"{path}.routes")
    routes = tuple(_route(c, opts, f"{path}.routes[{i}]", key, receivers) for i, c in enumerate(children))
    return Route(opts, matchers, bool(data.get("continue", False)), routes, key, path)


def _route_opts(data: Mapping[str, Any], parent: RouteOpts | None, path: str, receiver: str) -> RouteOpts:
    base = parent or RouteOpts(receiver)
    group_by, group_by_all = base.group_by, base.group_by_all
    if "group_by" in data:
        names = [str(n) for n in _field(path, "group_by", lambda: _list(data["group_by"], ""))]
        group_by_all = "..." in names
        if group_by_all and len(names) > 1:
            raise ConfigError(f"{path}: group_by: '...' groups by all labels and stands alone")
        group_by = () if group_by_all else tuple(names)
    return RouteOpts(
        receiver, group_by, group_by_all,
        _duration(data, "group_wait", path, base.group_wait_ms),
        _positive(_duration(data, "group_interval", path, base.group_interval_ms), path, "group_interval"),
        _positive(_duration(data, "repeat_interval", path, base.repeat_interval_ms), path, "repeat_interval"),
    )  # fmt: skip


def _inhibit(raw: Any, index: int) -> InhibitRule:
    where = f"inhibit_rules[{index}]"
    data = _mapping(raw, where, {"source_matchers", "target_matchers", "equal"})
    source = _matchers(data, "source_matchers", where)
    target = _matchers(data, "target_matchers", where)
    if not source or not target:
        raise ConfigError(f"{where}: source_matchers and target_matchers: both required")
    return InhibitRule(source, target, tuple(str(n) for n in _list(data.get("equal") or [], f"{where}.equal")))


def _receivers(items: Any) -> dict[str, Receiver]:
    receivers: dict[str, Receiver] = {}
    for index, raw in enumerate(_list(items, "receivers")):
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
    data = _mapping(raw, where, {"name", "kind", "url", "max_attempts", "backoff", "timeout", "fallback"})
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
    backoff = _duration(data, "backoff", where, 2000) / 1000
    timeout = _duration(data, "timeout", where, 10_000) / 1000
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


def _matchers(data: Mapping[str, Any], key: str, where: str) -> tuple[Matcher, ...]:
    return tuple(_field(where, key, lambda: [parse_matcher(m) for m in _list(data.get(key) or [], "")]))


def _duration(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    return default if data.get(key) is None else _field(where, key, lambda: parse_duration_ms(data[key]))


def _positive(ms: int, where: str, key: str) -> int:
    if ms <= 0:
        raise ConfigError(f"{where}: {key}: must be more than 0")
    return ms


def _labels(raw: Any, where: str, key: str) -> dict[str, str]:
    data = _mapping(raw or {}, f"{where}: {key}", None)
    for name, value in data.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: {key}.{name}: names are [A-Za-z_][A-Za-z0-9_]*, values are strings")
    return {str(k): str(v) for k, v in data.items()}


def _field(where: str, key: str, parse: Callable[[], T]) -> T:
    try:
        return parse()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None


def _mapping(raw: Any, where: str, known: set[str] | None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - known) if known is not None else []
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known or ()))})")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list" if where else "expected a list")
    return raw


def _str(raw: Any, problem: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(problem)
    return raw
