"""Deliberately broken events: still encodable as Avro and protobuf, but rejected by ingest's rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Record = dict[str, Any]


def _negative_amount(event: Record) -> None:
    event["amount"] = -abs(event["amount"]) - 1.0


def _nan_amount(event: Record) -> None:
    event["amount"] = float("nan")


def _lowercase_currency(event: Record) -> None:
    event["currency"] = event["currency"].lower()


def _bad_mcc(event: Record) -> None:
    event["merchant_category"] = event["merchant_category"][:3] + "X"


def _country_name(event: Record) -> None:
    event["country"] = "Narnia"


def _channel_words(event: Record) -> None:
    event["channel"] = "Point Of Sale"


def _seconds_not_millis(event: Record) -> None:
    event["event_time"] = event["event_time"] // 1000


def _far_future(event: Record) -> None:
    event["event_time"] = event["event_time"] + 86_400_000


def _missing_event_id(event: Record) -> None:
    event["event_id"] = ""


def _space_in_entity(event: Record) -> None:
    event["entity_id"] = event["entity_id"].replace("-", " ")


def _too_many_attributes(event: Record) -> None:
    event["attributes"] = {f"k{i}": "v" for i in range(40)}


MUTATIONS: dict[str, Callable[[Record], None]] = {
    "negative-amount": _negative_amount,
    "nan-amount": _nan_amount,
    "lowercase-currency": _lowercase_currency,
    "bad-mcc": _bad_mcc,
    "country-name": _country_name,
    "channel-words": _channel_words,
    "seconds-not-millis": _seconds_not_millis,
    "far-future": _far_future,
    "missing-event-id": _missing_event_id,
    "space-in-entity": _space_in_entity,
    "too-many-attributes": _too_many_attributes,
}
_KINDS = list(MUTATIONS)


def corrupt(rng: np.random.Generator, events: list[Record], rate: float) -> list[int]:
    """Break a `rate` share of events in place, one mutation each; returns their positions."""
    if rate <= 0 or not events:
        return []
    chosen = np.flatnonzero(rng.random(len(events)) < rate).tolist()
    kinds = rng.integers(len(_KINDS), size=len(chosen)).tolist()
    for index, kind in zip(chosen, kinds):
        MUTATIONS[_KINDS[kind]](events[index])
    return chosen
