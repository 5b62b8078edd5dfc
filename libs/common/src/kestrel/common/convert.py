"""Protobuf Event (kestrel.api.v1) <-> Avro-shaped dict (schemas/event.avsc): one mapping for every service."""

from __future__ import annotations

from typing import Any

from kestrel.api.v1 import event_pb2


def event_to_record(event: event_pb2.Event) -> dict[str, Any]:
    ts = event.event_time
    return {
        "event_id": event.event_id,
        "entity_id": event.entity_id,
        "event_time": ts.seconds * 1000 + ts.nanos // 1_000_000,
        "amount": event.amount,
        "currency": event.currency,
        "merchant_id": event.merchant_id,
        "merchant_category": event.merchant_category,
        "country": event.country,
        "channel": event.channel,
        "attributes": dict(event.attributes),
    }


def record_to_event(record: dict[str, Any]) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=record["event_id"],
        entity_id=record["entity_id"],
        amount=record["amount"],
        currency=record["currency"],
        merchant_id=record["merchant_id"],
        merchant_category=record["merchant_category"],
        country=record["country"],
        channel=record["channel"],
        attributes=record.get("attributes") or {},
    )
    event.event_time.FromMilliseconds(_millis(record["event_time"]))
    return event


def _millis(value: Any) -> int:
    """fastavro reads timestamp-millis as datetime; producers may hand us ints."""
    return value if isinstance(value, int) else int(value.timestamp() * 1000)
