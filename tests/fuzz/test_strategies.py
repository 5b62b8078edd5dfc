"""The fuzz kit itself, without servers: what the strategies draw, how answers are judged, the table."""

from __future__ import annotations

import grpc
from hypothesis import given
from hypothesis import strategies as st

from kestrel.api.v1 import ingest_pb2
from kestrel.common.avro import MAGIC
from kestrel.common.errors import SerializationError
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic

from .judge import judge_error, judge_items
from .sample import draw, share
from .strategies import UNKNOWN_SCHEMA_ID, events, frames, predict_requests
from .tally import Outcome, Tally, table

EVENTS = serde_for_topic(FileSchemaRegistry(), "fz.kestrel.events.v1", "event")
LABELS = serde_for_topic(FileSchemaRegistry(), "fz.kestrel.labels.v1", "label")


@given(events())
def test_fuzzed_events_always_serialize(event) -> None:
    assert type(event).FromString(event.SerializeToString()) == event  # no surrogate or other unsendable value


@given(predict_requests())
def test_fuzzed_requests_always_serialize(request) -> None:
    assert type(request).FromString(request.SerializeToString()) == request


def test_frames_cover_every_kind_of_bad_value() -> None:
    values = draw(frames(EVENTS, "event", LABELS, "label"), 300, salt=1)
    kinds = {_kind(v) for v in values}
    assert {"none", "empty", "wrong magic", "unknown schema id", "undecodable", "record"} <= kinds


def _kind(value: bytes | None) -> str:
    if value is None:
        return "none"
    if not value:
        return "empty"
    if value[0] != MAGIC:
        return "wrong magic"
    if len(value) >= 5 and int.from_bytes(value[1:5], "big") == UNKNOWN_SCHEMA_ID:
        return "unknown schema id"
    try:
        EVENTS.deserialize(value)
    except SerializationError:
        return "undecodable"
    return "record"


def test_draw_is_seeded_and_shares_are_at_least_ten() -> None:
    assert draw(st.integers(), 30, salt=3) == draw(st.integers(), 30, salt=3)
    assert share("ingest.PublishBatch") >= 10


class _Error(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def test_an_error_is_clear_only_when_it_names_the_field() -> None:
    assert judge_error(_Error(grpc.StatusCode.INVALID_ARGUMENT, "event.amount: must be >= 0"))[0] is Outcome.CLEAR_ERROR
    assert judge_error(_Error(grpc.StatusCode.INVALID_ARGUMENT, "requests[3].event: is required"))[0] is (
        Outcome.CLEAR_ERROR
    )
    assert judge_error(_Error(grpc.StatusCode.INVALID_ARGUMENT, "bad"))[0] is Outcome.UNCLEAR
    assert judge_error(_Error(grpc.StatusCode.INTERNAL, "event.amount: oops"))[0] is Outcome.UNCLEAR
    assert judge_error(_Error(grpc.StatusCode.UNKNOWN, "Unexpected DecodeError"))[0] is Outcome.UNCLEAR


def test_a_batch_answer_must_account_for_every_event_and_name_fields() -> None:
    good = ingest_pb2.PublishBatchResponse(accepted=1, rejected=1)
    good.results.add(index=0, accepted=True)
    good.results.add(index=1, accepted=False).violations.add(field="event.amount", reason="must be >= 0")
    assert judge_items(good, 2)[0] is Outcome.CLEAR_ERROR
    assert judge_items(good, 3)[0] is Outcome.UNCLEAR
    silent = ingest_pb2.PublishBatchResponse(rejected=1)
    silent.results.add(index=0, accepted=False)
    assert judge_items(silent, 1)[0] is Outcome.UNCLEAR


def test_table_totals_every_column() -> None:
    a, b = Tally("a"), Tally("b")
    a.add(Outcome.OK)
    b.add(Outcome.DEAD_LETTER)
    b.add(Outcome.UNCLEAR, "boom")
    lines = table([a.row(), b.row()]).splitlines()
    assert lines[0] == "| target | inputs | ok | clear error | dead letter | crash/unclear |"
    assert lines[-1] == "| **total** | 3 | 1 | 0 | 1 | 1 |" and b.unclear == ["boom"]
