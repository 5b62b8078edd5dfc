"""Request bytes that do not decode as the method's message are the caller's mistake: INVALID_ARGUMENT naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from kestrel.common.errors import InvalidArgumentError


class Undecodable:
    """Stands in for a unary request that did not decode; the handler wrapper raises its `error`."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgumentError) -> None:
        self.error = error


def checked_deserializer(
    deserializer: Callable[[bytes], Any] | None, streaming_request: bool
) -> Callable[[bytes], Any] | None:
    """grpc answers UNKNOWN when a unary request's deserializer raises, and a stream's DecodeError reaches the
    handler as a bug (INTERNAL): return a stand-in for the first and raise InvalidArgumentError for the second."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            error = InvalidArgumentError("request", f"is not a valid {_type_name(exc)}")
            if streaming_request:
                raise error from exc
            return Undecodable(error)

    return decode


def _type_name(exc: DecodeError) -> str:
    """protobuf says "Error parsing message with type 'pkg.Name'"; keep the name, or say what we know."""
    text = str(exc)
    return text.split("'")[1] if text.count("'") >= 2 else "message of this method"
