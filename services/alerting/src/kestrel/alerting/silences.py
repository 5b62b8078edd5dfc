"""Silences as kestrel.alerting-silences.v1 records: parse matchers and durations, create, expire, check (pure)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kestrel.alerting import matchers
from kestrel.alerting.matchers import ConfigError, Matcher
from kestrel.alerting.routing import Silence
from kestrel.common.errors import InvalidArgumentError

SILENCES_TOPIC = "kestrel.alerting-silences.v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Record = dict[str, Any]
"""One silence as its Avro record (schemas/alerting_silence.avsc)."""


def parse_matcher(text: str) -> Record:
    """`model="fraud"`, `severity!=info`, `feature=~"amount|mcc"` -> a SilenceMatcher record (Alertmanager syntax)."""
    try:
        return matcher_record(matchers.parse_matcher(text))
    except ConfigError as exc:
        raise InvalidArgumentError("matcher", str(exc)) from exc


def parse_duration(text: str) -> int:
    """`2h`, `1h30m`, `90s`, `1d` -> milliseconds (Prometheus duration syntax); must be positive."""
    try:
        total = matchers.parse_duration_ms(text.strip())
    except ConfigError as exc:
        raise InvalidArgumentError("duration", str(exc)) from exc
    if total <= 0:
        raise InvalidArgumentError("duration", "must be positive")
    return total


def matcher_record(m: Matcher) -> Record:
    return {"name": m.name, "value": m.value, "is_regex": "~" in m.op, "is_equal": m.op[0] == "="}


def to_matcher(record: Mapping[str, Any]) -> Matcher:
    op = {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}
    return Matcher(record["name"], op[record["is_equal"], record["is_regex"]], record["value"])


def to_silence(record: Mapping[str, Any]) -> Silence:
    """The record as routing's Silence, which the app's silence matching takes."""
    return Silence(
        id=record["silence_id"],
        matchers=tuple(to_matcher(m) for m in record["matchers"]),
        starts_at_ms=record["starts_at"],
        ends_at_ms=record["ends_at"],
        created_by=record["created_by"],
        comment=record["comment"],
    )


def new_silence(
    matchers: Iterable[Record],
    *,
    now_ms: int,
    ends_at_ms: int,
    created_by: str,
    comment: str,
    starts_at_ms: int | None = None,
    silence_id: str | None = None,
) -> Record:
    """A valid silence record; InvalidArgumentError naming the field otherwise."""
    record = {
        "silence_id": silence_id or str(uuid.uuid4()),
        "matchers": [dict(m) for m in matchers],
        "starts_at": now_ms if starts_at_ms is None else starts_at_ms,
        "ends_at": ends_at_ms,
        "created_by": created_by.strip(),
        "comment": comment.strip(),
        "updated_at": now_ms,
    }
    validate(record)
    return record


def validate(record: Mapping[str, Any]) -> None:
    if not record["matchers"]:
        raise InvalidArgumentError("matchers", "a silence needs at least one matcher")
    if all(_matches_empty(m) for m in record["matchers"]):
        raise InvalidArgumentError("matchers", "every matcher also matches an empty label: it would silence all")
    if not record["created_by"]:
        raise InvalidArgumentError("created_by", "required")
    if not record["comment"]:
        raise InvalidArgumentError("comment", "required")
    if record["ends_at"] <= record["starts_at"]:
        raise InvalidArgumentError("ends_at", "must be after starts_at")


def expire(record: Mapping[str, Any], now_ms: int) -> Record:
    """The silence ending now (a silence that has not started yet ends before it starts: it never applies)."""
    if status(record, now_ms) == "expired":
        return dict(record)
    return {**record, "ends_at": max(now_ms, record["starts_at"]), "updated_at": now_ms}


def status(record: Mapping[str, Any], now_ms: int) -> str:
    """Alertmanager's states: pending (starts later), active, expired."""
    if record["ends_at"] <= now_ms or record["ends_at"] <= record["starts_at"]:
        return "expired"
    return "pending" if record["starts_at"] > now_ms else "active"


def latest(records: Iterable[Mapping[str, Any]]) -> dict[str, Record]:
    """The compacted view: the newest version of each silence id (by updated_at, then arrival)."""
    found: dict[str, Record] = {}
    for record in records:
        known = found.get(record["silence_id"])
        if known is None or record["updated_at"] >= known["updated_at"]:
            found[record["silence_id"]] = dict(record)
    return found


def describe_matchers(record: Mapping[str, Any]) -> str:
    return ",".join(str(to_matcher(m)) for m in record["matchers"])


def _matches_empty(matcher: Mapping[str, Any]) -> bool:
    """A missing label reads as the empty string in Alertmanager, so such a matcher matches every alert."""
    return to_matcher(matcher).matches({})


def _check_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise InvalidArgumentError("matcher", f"bad regular expression {value!r}: {exc}") from exc


def to_api(record: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """A silence in Alertmanager's API v2 shape (gettableSilence), so its tooling reads ours."""
    return {
        "id": record["silence_id"],
        "matchers": [
            {"name": m["name"], "value": m["value"], "isRegex": m["is_regex"], "isEqual": m["is_equal"]}
            for m in record["matchers"]
        ],
        "startsAt": rfc3339(record["starts_at"]),
        "endsAt": rfc3339(record["ends_at"]),
        "updatedAt": rfc3339(record["updated_at"]),
        "createdBy": record["created_by"],
        "comment": record["comment"],
        "status": {"state": status(record, now_ms)},
    }


def from_api(body: Mapping[str, Any], now_ms: int) -> Record:
    """A new silence from Alertmanager's postableSilence (matchers, startsAt?, endsAt, createdBy, comment)."""
    try:
        matchers = [_api_matcher(m) for m in body["matchers"]]
        ends_at = parse_rfc3339(body["endsAt"])
        starts_at = parse_rfc3339(body["startsAt"]) if body.get("startsAt") else None
        created_by, comment = str(body["createdBy"]), str(body["comment"])
    except KeyError as exc:
        raise InvalidArgumentError(str(exc.args[0]), "required") from exc
    except (TypeError, AttributeError) as exc:
        raise InvalidArgumentError("body", f"not a silence: {exc}") from exc
    return new_silence(
        matchers, now_ms=now_ms, ends_at_ms=ends_at, starts_at_ms=starts_at, created_by=created_by, comment=comment
    )


def _api_matcher(m: Mapping[str, Any]) -> Record:
    name, value, is_regex = str(m["name"]), str(m["value"]), bool(m.get("isRegex", False))
    if is_regex:
        _check_regex(value)
    return {"name": name, "value": value, "is_regex": is_regex, "is_equal": bool(m.get("isEqual", True))}


def rfc3339(ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 UTC with milliseconds, e.g. 2026-12-03T11:30:00.000Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> int:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidArgumentError("time", f"{text!r} is not an RFC 3339 time") from exc
    if moment.tzinfo is None:
        raise InvalidArgumentError("time", f"{text!r} has no time zone")
    return (moment - _EPOCH) // timedelta(milliseconds=1)  # integers: float seconds * 1000 truncated 8.107 s to 8106
