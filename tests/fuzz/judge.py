"""Judging one gRPC answer to bad input: OK, a clear error naming the field, or unclear (a defect)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import grpc

from kestrel.api.v1 import ingest_pb2

from .tally import Outcome

# An error is clear when it names the field: "event.amount: must be ...", "requests[3].event.currency: ...".
_NAMED_FIELD = re.compile(r"(^|[\s;(])(request|requests|event|events|entity_id|request_id)(\[\d+\])?[.:\[ ]")
# Codes a client can act on without reading our logs; RESOURCE_EXHAUSTED names a size limit, not a field.
_NAMING = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.FAILED_PRECONDITION}


def judge_error(error: grpc.aio.AioRpcError) -> tuple[Outcome, str]:
    details = error.details() or ""
    if error.code() in _NAMING and _NAMED_FIELD.search(details):
        return Outcome.CLEAR_ERROR, details
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and details:
        return Outcome.CLEAR_ERROR, details
    return Outcome.UNCLEAR, f"{error.code().name}: {details}"


def judge_items(reply: ingest_pb2.PublishBatchResponse, sent: int) -> tuple[Outcome, str]:
    """A batch answer is clear when it accounts for every event and names a field for each one rejected."""
    if reply.accepted + reply.rejected != sent:
        return Outcome.UNCLEAR, f"{reply.accepted}+{reply.rejected} results for {sent} events"
    rejected = [r for r in reply.results if not r.accepted]
    if any(not _names_fields(r.violations) for r in rejected):
        return Outcome.UNCLEAR, f"a rejection without a field: {rejected}"
    return (Outcome.CLEAR_ERROR, "") if rejected else (Outcome.OK, "")


def _names_fields(violations: Iterable[ingest_pb2.FieldViolation]) -> bool:
    found = list(violations)
    return bool(found) and all(v.field and v.reason for v in found)
