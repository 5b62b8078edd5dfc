"""Rule conditions: a tiny declarative grammar (`drift_share > 0.3 and status == "drift"`) over named signal fields."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kestrel.alerting.matchers import ConfigError

MODEL_FIELDS = {
    "status": "report status: ok, drift or insufficient_data",
    "drifted": "the window as a whole judged drifted (true/false)",
    "drifted_features": "number of drifted features (the score excluded)",
    "drift_share": "drifted features / tested features (the score excluded), 0..1",
    "score_drifted": "the score's distribution drifted (true/false; absent without a score metric)",
    "score_psi": "population stability index of the score",
    "window_size": "rows in the window",
    "late_predictions": "predictions that arrived after the window closed",
    "performance_degraded": "performance.degraded (true/false)",
    "performance_basis": "what degraded was decided on: measured, estimated or none",
    "labelled": "labelled predictions in the window",
    "pr_auc": "measured PR-AUC",
    "reference_pr_auc": "the model version's reference PR-AUC",
    "band_low": "lower edge of the PR-AUC reference band",
    "pr_auc_below_band": "measured PR-AUC below band_low (true/false)",
    "estimated_precision": "CBPE estimated precision at the threshold",
    "precision_band_low": "lower edge of the estimated precision's reference band",
    "estimated_precision_below_band": "estimated precision below precision_band_low (true/false)",
}
FEATURE_FIELDS = {
    "feature_drifted": "this feature's drift verdict (true/false)",
    "feature_psi": "this feature's population stability index",
    "feature_statistic": "this feature's test statistic (KS D or chi-squared)",
    "feature_p_corrected": "this feature's corrected p-value",
    "feature_effect_size": "this feature's effect size",
}
PLATFORM_FIELDS = {
    "consumer_lag": "messages a consumer group is behind, summed over its partitions (label group)",
    "dlq_rate": "dead letters per second on a kestrel.dlq.* topic (label topic)",
}
STRING_FIELDS = {"status", "performance_basis"}
SCOPES = {"model": MODEL_FIELDS, "feature": FEATURE_FIELDS, "platform": PLATFORM_FIELDS}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_KINDS = ("paren", "op", "string", "name", "number")
"""What each group of _TOKEN reads, in order."""
_TOKEN = re.compile(
    r'\s*(?:(\(|\))|(>=|<=|==|!=|>|<)|"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*)|(-?[0-9.]+(?:e-?\d+)?))'
)


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: float | str

    def holds(self, values: Mapping[str, Any]) -> bool:
        got = values.get(self.field)
        if got is None or isinstance(got, str) != isinstance(self.value, str):
            return False  # an absent (null) field holds no condition, as a missing series in Prometheus
        return _OPS[self.op](float(got) if isinstance(got, bool) else got, self.value)


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    parts: tuple[Condition, ...]

    def holds(self, values: Mapping[str, Any]) -> bool:
        combine = all if self.op == "and" else any
        return combine(p.holds(values) for p in self.parts)


Condition = Comparison | Junction
Tokens = list[tuple[str, str]]


def fields_of(cond: Condition) -> set[str]:
    if isinstance(cond, Comparison):
        return {cond.field}
    return set().union(*(fields_of(p) for p in cond.parts))


def scope_of(cond: Condition) -> str:
    """feature when the condition names a feature_ field, platform for platform fields, else model."""
    fields = fields_of(cond)
    platform = fields & PLATFORM_FIELDS.keys()
    if platform and fields - platform:
        raise ConfigError("mixes platform fields with drift-report fields")
    if platform:
        return "platform"
    return "feature" if fields & FEATURE_FIELDS.keys() else "model"


def parse_condition(text: str) -> Condition:
    """Parses `field op literal` terms joined by `and` (binds tighter) and `or`, with parentheses."""
    tokens = _tokenize(text)
    cond, rest = _parse_or(tokens)
    if rest:
        raise ConfigError(f"unexpected {rest[0][1]!r}")
    return cond


def _tokenize(text: str) -> Tokens:
    tokens: Tokens = []
    pos, text = 0, text.strip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found or found.end() == pos:
            raise ConfigError(f"cannot read {text[pos:]!r}")
        group = found.lastindex or 0  # exactly one alternative's group matched
        tokens.append((_KINDS[group - 1], found.group(group)))
        pos = found.end()
    return tokens


def _parse_or(tokens: Tokens) -> tuple[Condition, Tokens]:
    return _parse_junction(tokens, "or", _parse_and)


def _parse_and(tokens: Tokens) -> tuple[Condition, Tokens]:
    return _parse_junction(tokens, "and", _parse_term)


def _parse_junction(
    tokens: Tokens, word: str, parse_part: Callable[[Tokens], tuple[Condition, Tokens]]
) -> tuple[Condition, Tokens]:
    first, rest = parse_part(tokens)
    parts: list[Condition] = [first]
    while rest and rest[0] == ("name", word):
        part, rest = parse_part(rest[1:])
        parts.append(part)
    return (first if len(parts) == 1 else Junction(word, tuple(parts))), rest


def _parse_term(tokens: Tokens) -> tuple[Condition, Tokens]:
    if tokens and tokens[0] == ("paren", "("):
        cond, rest = _parse_or(tokens[1:])
        if not rest or rest[0] != ("paren", ")"):
            raise ConfigError("missing ')'")
        return cond, rest[1:]
    if len(tokens) < 3 or tokens[0][0] != "name" or tokens[1][0] != "op":
        raise ConfigError(f"expected `field comparator value` at {' '.join(t[1] for t in tokens[:3])!r}")
    (_, name), (_, op), (kind, raw) = tokens[:3]
    if not any(name in fields for fields in SCOPES.values()):
        raise ConfigError(f"unknown field {name!r} (known: {', '.join(sorted(_all_fields()))})")
    value = _literal(kind, raw, op)
    if isinstance(value, str) != (name in STRING_FIELDS):
        kind_name = 'a string: compare it with a "quoted" value' if name in STRING_FIELDS else "a number"
        raise ConfigError(f"{name} holds {kind_name}")
    return Comparison(name, op, value), tokens[3:]


def _literal(kind: str, raw: str, op: str) -> float | str:
    if kind == "string":
        if op not in ("==", "!="):
            raise ConfigError(f"a string compares only with == or != (got {op})")
        return raw.replace('\\"', '"')
    if kind == "name" and raw in ("true", "false"):
        return 1.0 if raw == "true" else 0.0
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f'expected a number, true, false or a "string", got {raw!r}') from None


def _all_fields() -> set[str]:
    return set().union(*(fields.keys() for fields in SCOPES.values()))
