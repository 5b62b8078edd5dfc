"""Helpers shared by the features tests: records as the consumer hands them over, Avro serdes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.registry import FileSchemaRegistry

T0 = 1_700_000_000_000
REGISTRY = FileSchemaRegistry()
EVENTS = AvroSerde(REGISTRY, "events-value", load_schema("event"))
VECTORS = AvroSerde(REGISTRY, "features-value", load_schema("feature_vector"))


@dataclass
class Record:
    """The fields of aiokafka's ConsumerRecord the service reads."""

    value: bytes | None
    partition: int = 0
    offset: int = 0
    topic: str = "events"
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def event(i: int, t: int, entity: str = "card-1", amount: float = 10.0, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e-{i}",
        "entity_id": entity,
        "event_time": t,
        "amount": amount,
        "currency": "EUR",
        "merchant_id": f"m-{i % 3}",
        "merchant_category": "5411",
        "country": "DE",
        "channel": "pos",
        "attributes": {},
    } | extra
