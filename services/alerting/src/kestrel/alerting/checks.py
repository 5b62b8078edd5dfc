"""Small checks for the config loader, each raising one ConfigError line that names the item and field."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kestrel.alerting.matchers import ConfigError, Matcher, parse_duration_ms, parse_matcher

T = TypeVar("T")


def matchers_at(data: Mapping[str, Any], key: str, where: str) -> tuple[Matcher, ...]:
    return tuple(field_at(where, key, lambda: [parse_matcher(m) for m in list_at(data.get(key) or [], "")]))


def duration_at(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    return default if data.get(key) is None else field_at(where, key, lambda: parse_duration_ms(data[key]))


def positive(ms: int, where: str, key: str) -> int:
    if ms <= 0:
        raise ConfigError(f"{where}: {key}: must be more than 0")
    return ms


def labels_at(raw: Any, where: str, key: str) -> dict[str, str]:
    data = mapping_at(raw or {}, f"{where}: {key}", None)
    for name, value in data.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: {key}.{name}: names are [A-Za-z_][A-Za-z0-9_]*, values are strings")
    return {str(k): str(v) for k, v in data.items()}


def field_at(where: str, key: str, parse: Callable[[], T]) -> T:
    try:
        return parse()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None


def mapping_at(raw: Any, where: str, known: set[str] | None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - known) if known is not None else []
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known or ()))})")
    return raw


def list_at(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list" if where else "expected a list")
    return raw


def text_at(raw: Any, problem: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(problem)
    return raw
