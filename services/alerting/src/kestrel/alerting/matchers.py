"""Alertmanager label matchers (`name="v"`, `=~`, `!=`, `!~`) and Prometheus durations (30s, 5m, 1h30m)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kestrel.common.errors import KestrelError

OPS = ("=~", "!~", "!=", "=")
_MATCHER = re.compile(
    r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|((?:[^"\s,{}=!~][^"\s,{}]*)?))\s*$'
)
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


class ConfigError(KestrelError):
    """The alerting configuration (or a silence) is invalid; the message names the item and field."""


@dataclass(frozen=True)
class Matcher:
    """One label matcher; a missing label matches as the empty string, regexes are anchored (as Alertmanager)."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = self._compiled().fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def _compiled(self) -> re.Pattern[str]:
        return self._regex or re.compile(self.value)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    def to_json(self) -> str:
        return str(self)


def parse_matcher(text: str) -> Matcher:
    """`name="value"` (quotes optional for plain values) with =, !=, =~ or !~; ConfigError when malformed."""
    found = _MATCHER.match(text) if isinstance(text, str) else None
    if not found:
        raise ConfigError(f'bad matcher {text!r} (use name="value", name!="v", name=~"re" or name!~"re")')
    name, op, quoted, bare = found.groups()
    value = _unescape(quoted) if quoted is not None else bare
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ConfigError(f"bad regex in matcher {text!r}: {exc}") from exc
    return Matcher(name, op, value, regex)


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def matchers_str(matchers: tuple[Matcher, ...]) -> str:
    """Alertmanager's Matchers.String(): `{a="1",b=~"x"}`, used in route keys."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def parse_duration_ms(text: object) -> int:
    """Prometheus duration syntax (units y w d h m s ms, largest first, e.g. 1h30m) in milliseconds; `0` is zero."""
    if text == 0 or text == "0":
        return 0
    found = _DURATION.match(text) if isinstance(text, str) and text else None
    if not found or not any(found.groups()):
        raise ConfigError(f"invalid duration {text!r} (use 30s, 5m, 4h, 1h30m)")
    return sum(int(n) * unit for n, unit in zip(found.groups(), _UNIT_MS, strict=True) if n)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
