"""Kestrel's exception hierarchy: adapters map these to gRPC codes and dead-letter reasons."""

from __future__ import annotations

from collections.abc import Sequence


class KestrelError(Exception):
    """Base of every error Kestrel raises on purpose."""


class SerializationError(KestrelError):
    """A record could not be encoded or a payload could not be decoded; the data is at fault.

    Consumers dead-letter the record: retrying the same bytes can never succeed.
    """

    def __init__(self, reason: str, *, schema_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.schema_id = schema_id


class SchemaRegistryError(KestrelError):
    """The schema registry failed or refused a request (unreachable, 5xx, auth, bad schema).

    Unlike SerializationError this says nothing about the data, so consumers should retry or pause,
    not dead-letter.
    """


class SchemaNotFoundError(SchemaRegistryError):
    """The registry does not know the requested schema id, subject or schema."""


class IncompatibleSchemaError(SchemaRegistryError):
    """A schema change would break readers (see kestrel.common.avro.check_backward_compatible)."""


class InvalidArgumentError(KestrelError):
    """Bad input from a caller: names the field(s) and the reason(s) (gRPC INVALID_ARGUMENT)."""

    def __init__(self, field: str, reason: str, more: Sequence[tuple[str, str]] = ()) -> None:
        self.violations = [(field, reason), *more]
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.violations))
        self.field = field
        self.reason = reason


class NotFoundError(KestrelError):
    """A named thing (model, entity) does not exist (gRPC NOT_FOUND)."""


class UnavailableError(KestrelError):
    """A dependency (broker, Redis, PostgreSQL, Triton) cannot be reached now; retrying may work."""


class OverloadedError(KestrelError):
    """Bounded buffers are full; the caller should slow down (gRPC RESOURCE_EXHAUSTED). `retry_after_ms`, when
    set, goes to the caller as gRPC's `grpc-retry-pushback-ms` trailer (gRFC A6) and in the message."""

    def __init__(self, reason: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(reason if retry_after_ms is None else f"{reason}; retry in {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class SchemaRegistryUnavailableError(SchemaRegistryError, UnavailableError):
    """The registry could not be reached or answered 5xx; retrying may work (gRPC UNAVAILABLE)."""
