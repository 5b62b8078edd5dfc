"""Pure event validation shared by ingest and inference: every rule names the field and the reason; no I/O."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_CURRENCY = re.compile(r"^[A-Z]{3}\Z")
_COUNTRY = re.compile(r"^[A-Z]{2}\Z")
_MCC = re.compile(r"^[0-9]{4}\Z")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
_ID = re.compile(r"^[\x21-\x7e]{1,128}\Z")  # printable ASCII, no spaces: safe as Kafka keys and SQL ids
_MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01: anything older is a unit mistake, not a late event


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Limits:
    max_future_skew_ms: int = 300_000
    max_amount: float = 1e9
    max_attributes: int = 32
    max_attribute_key: int = 64
    max_attribute_value: int = 256
    max_event_bytes: int = 16_384


def check_id(value: str, name: str) -> Violation | None:
    """An id (event, entity, merchant): required, 1-128 printable ASCII characters without spaces."""
    if not value:
        return Violation(name, "is required")
    if not _ID.match(value):
        return Violation(name, "must be 1-128 printable ASCII characters without spaces")
    return None


def _check_id(event: dict[str, Any], name: str) -> Violation | None:
    return check_id(event.get(name, ""), name)


def _check_pattern(event: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> Violation | None:
    value = event.get(name, "")
    if not value:
        return Violation(name, "is required")
    if not pattern.match(value):
        return Violation(name, f"must be {what}, got {value[:40]!r}")
    return None


def _check_amount(amount: Any, limits: Limits) -> Violation | None:
    if not isinstance(amount, (int, float)) or not math.isfinite(amount):
        return Violation("amount", "must be a finite number")
    if amount < 0:
        return Violation("amount", "must be >= 0")
    if amount > limits.max_amount:
        return Violation("amount", f"must be <= {limits.max_amount:g}")
    return None


def check_event_time(event_time_ms: int, now_ms: int, limits: Limits) -> Violation | None:
    """An event time ingest accepts: set, after 2000-01-01, at most max_future_skew_ms past `now_ms`."""
    if event_time_ms <= 0:
        return Violation("event_time", "is required")
    if event_time_ms < _MIN_EVENT_TIME_MS:
        return Violation("event_time", "is before 2000-01-01 (seconds sent as milliseconds?)")
    if event_time_ms > now_ms + limits.max_future_skew_ms:
        return Violation("event_time", f"is more than {limits.max_future_skew_ms // 1000}s in the future")
    return None


def _check_attributes(attributes: dict[str, str], limits: Limits) -> Violation | None:
    if len(attributes) > limits.max_attributes:
        return Violation("attributes", f"at most {limits.max_attributes} entries")
    for key, value in attributes.items():
        if not key or len(key) > limits.max_attribute_key:
            return Violation(f"attributes[{key[:40]!r}]", f"key must be 1-{limits.max_attribute_key} characters")
        if len(value) > limits.max_attribute_value:
            return Violation(f"attributes[{key!r}]", f"value longer than {limits.max_attribute_value} characters")
    return None


def validate_event(event: dict[str, Any], now_ms: int, limits: Limits = Limits(), size: int = 0) -> list[Violation]:
    """Every violation of one event (an Avro-shaped dict), in field order."""
    checks = [
        _check_id(event, "event_id"),
        _check_id(event, "entity_id"),
        check_event_time(event.get("event_time", 0), now_ms, limits),
        _check_amount(event.get("amount"), limits),
        _check_pattern(event, "currency", _CURRENCY, "an ISO 4217 code like 'EUR'"),
        _check_id(event, "merchant_id"),
        _check_pattern(event, "merchant_category", _MCC, "a 4-digit MCC like '5411'"),
        _check_pattern(event, "country", _COUNTRY, "an ISO 3166-1 alpha-2 code like 'DE'"),
        _check_pattern(event, "channel", _CHANNEL, "a lowercase word like 'ecommerce'"),
        _check_attributes(event.get("attributes", {}), limits),
    ]
    if size > limits.max_event_bytes:
        checks.append(Violation("event", f"is {size} bytes, over the {limits.max_event_bytes}-byte limit"))
    return [c for c in checks if c is not None]
