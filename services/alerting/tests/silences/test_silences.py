"""Silence records: matcher and duration syntax, validation, expiry, the compacted view, the API v2 shape."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kestrel.alerting import silences
from kestrel.common.errors import InvalidArgumentError

NOW = 1_800_000_000_000
HOUR = 3_600_000


def _silence(**overrides):
    base = {
        "matchers": [silences.parse_matcher('model="fraud"')],
        "now_ms": NOW,
        "ends_at_ms": NOW + HOUR,
        "created_by": "ana",
        "comment": "retraining",
    }
    return silences.new_silence(**(base | overrides))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('model="fraud"', {"name": "model", "value": "fraud", "is_regex": False, "is_equal": True}),
        ("severity!=info", {"name": "severity", "value": "info", "is_regex": False, "is_equal": False}),
        ('feature=~"amount|mcc"', {"name": "feature", "value": "amount|mcc", "is_regex": True, "is_equal": True}),
        ('env !~ "dev.*"', {"name": "env", "value": "dev.*", "is_regex": True, "is_equal": False}),
        (r'note="say \"hi\""', {"name": "note", "value": 'say "hi"', "is_regex": False, "is_equal": True}),
    ],
)
def test_matchers_in_alertmanager_syntax(text, expected):
    assert silences.parse_matcher(text) == expected


@pytest.mark.parametrize("text", ["model", '="x"', "model==x x", 'f=~"("'])
def test_bad_matchers_name_the_field(text):
    with pytest.raises(InvalidArgumentError) as caught:
        silences.parse_matcher(text)
    assert caught.value.field == "matcher"


@pytest.mark.parametrize(("text", "ms"), [("2h", 2 * HOUR), ("1h30m", 90 * 60_000), ("45s", 45_000), ("1d", 24 * HOUR)])
def test_durations(text, ms):
    assert silences.parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "2", "h", "0s", "2h junk", "-1h"])
def test_bad_durations(text):
    with pytest.raises(InvalidArgumentError):
        silences.parse_duration(text)


def test_new_silence_is_active_then_expired():
    record = _silence()
    assert silences.status(record, NOW) == "active"
    assert silences.status(record, NOW + HOUR) == "expired"
    assert silences.status(_silence(starts_at_ms=NOW + 10), NOW) == "pending"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"matchers": []}, "matchers"),
        ({"matchers": [silences.parse_matcher('model=""')]}, "matchers"),
        ({"matchers": [silences.parse_matcher('model=~".*"')]}, "matchers"),
        ({"created_by": " "}, "created_by"),
        ({"comment": ""}, "comment"),
        ({"ends_at_ms": NOW}, "ends_at"),
    ],
)
def test_invalid_silences_are_refused(overrides, field):
    with pytest.raises(InvalidArgumentError) as caught:
        _silence(**overrides)
    assert caught.value.field == field


def test_expire_ends_it_now_and_is_idempotent():
    record = _silence()
    expired = silences.expire(record, NOW + 5)
    assert (expired["ends_at"], expired["updated_at"]) == (NOW + 5, NOW + 5)
    assert silences.status(expired, NOW + 5) == "expired"
    assert silences.expire(expired, NOW + 50) == expired


def test_expiring_a_pending_silence_means_it_never_applies():
    expired = silences.expire(_silence(starts_at_ms=NOW + HOUR, ends_at_ms=NOW + 2 * HOUR), NOW)
    assert silences.status(expired, NOW + HOUR + 1) == "expired"


def test_latest_keeps_the_newest_version_of_each_id():
    first = _silence(silence_id="a")
    other = _silence(silence_id="b")
    expired = silences.expire(first, NOW + 1)
    assert silences.latest([first, other, expired]) == {"a": expired, "b": other}
    assert silences.latest([expired, first])["a"] == expired


def test_api_round_trip_in_alertmanager_shape():
    record = _silence(matchers=[silences.parse_matcher('model="fraud"'), silences.parse_matcher("sev!~info|debug")])
    shown = silences.to_api(record, NOW)
    assert shown["matchers"][1] == {"name": "sev", "value": "info|debug", "isRegex": True, "isEqual": False}
    assert shown["status"] == {"state": "active"} and shown["endsAt"].endswith("Z")
    again = silences.from_api(shown, NOW)
    assert {k: again[k] for k in ("matchers", "starts_at", "ends_at", "created_by", "comment")} == {
        k: record[k] for k in ("matchers", "starts_at", "ends_at", "created_by", "comment")
    }


def test_api_body_without_a_field_names_it():
    with pytest.raises(InvalidArgumentError) as caught:
        silences.from_api({"matchers": [], "createdBy": "x", "comment": "y"}, NOW)
    assert caught.value.field == "endsAt"


@example(8107)  # float seconds * 1000 once truncated this to 8106
@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_rfc3339_round_trip(ms):
    assert silences.parse_rfc3339(silences.rfc3339(ms)) == ms


def test_silence_records_fit_their_schema():
    from kestrel.common.avro import AvroSerde, load_schema
    from kestrel.common.registry import FileSchemaRegistry

    serde = AvroSerde(FileSchemaRegistry(), "kestrel.alerting-silences.v1-value", load_schema("alerting_silence"))
    record = _silence()
    assert serde.deserialize(serde.serialize(record)) == record


def test_records_become_routings_silences():
    from kestrel.alerting.routing import silenced

    record = _silence(matchers=[silences.parse_matcher('model="fraud"'), silences.parse_matcher('feature=~"amo.*"')])
    silence = silences.to_silence(record)
    assert silenced({"model": "fraud", "feature": "amount"}, [silence], NOW)
    assert not silenced({"model": "fraud", "feature": "mcc"}, [silence], NOW)
    assert not silenced(
        {"model": "fraud", "feature": "amount"}, [silences.to_silence(silences.expire(record, NOW))], NOW
    )
    assert silences.describe_matchers(record) == 'model="fraud",feature=~"amo.*"'
