"""Shared helpers: events shaped like schemas/event.avsc, and the card feature set."""

from __future__ import annotations

from typing import Any

import pytest

from kestrel.featureset import FeatureSet, load_feature_set
from kestrel.featureset.state import FeatureComputer

T0 = 1_700_000_000_000


def event(
    t: int,
    amount: float = 10.0,
    entity: str = "card-1",
    merchant: str = "m-1",
    country: str = "DE",
    channel: str = "pos",
    mcc: str = "5411",
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"e-{entity}-{t}-{amount}",
        "entity_id": entity,
        "event_time": t,
        "amount": amount,
        "currency": "EUR",
        "merchant_id": merchant,
        "merchant_category": mcc,
        "country": country,
        "channel": channel,
        "attributes": {},
    }


@pytest.fixture(scope="session")
def card() -> FeatureSet:
    return load_feature_set("card")


@pytest.fixture
def computer(card: FeatureSet) -> FeatureComputer:
    return FeatureComputer(card)
