"""The events reference: the training events' monitored columns, counted, saved beside the artifact."""

from __future__ import annotations

import math

import pytest

from kestrel.model import ModelError, TrainConfig, build, from_events, load, save, train
from kestrel.model.artifact import EVENTS_JSON
from kestrel.model.events import AMOUNT_FLOOR, COLUMNS, EventReference, amount_bucket, bucket_low, event_reference
from kestrel.model.learners import MLPConfig

BASE = {"currency": "EUR", "merchant_id": "m1", "merchant_category": "5411", "country": "DE", "attributes": {}}


def _events(n: int) -> list[dict[str, object]]:
    return [
        {
            **BASE,
            "event_id": f"e{i}",
            "entity_id": f"c{i % 50}",
            "event_time": 1_700_000_000_000 + 60_000 * i,
            "amount": 5.0 + (i % 97),
            "channel": "ecommerce" if i % 4 == 0 else "pos",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("amount", [0.0, -3.0, 0.001, 0.01, 0.37, 1.0, 9.99, 10.0, 123.45, 1e6])
def test_an_amount_falls_in_the_bucket_whose_range_holds_it(amount):
    k = amount_bucket(amount)
    assert k >= AMOUNT_FLOOR
    if amount > 0.01:
        assert bucket_low(k) <= amount * (1 + 1e-12) and amount < bucket_low(k + 1)
        assert bucket_low(k + 1) / bucket_low(k) == pytest.approx(10 ** (1 / 200))
    else:
        assert k == AMOUNT_FLOOR and bucket_low(k) == 0.0 and amount < bucket_low(k + 1)


def test_the_reference_counts_every_column_of_every_event():
    ref = event_reference(_events(400))
    assert ref.rows == 400 and set(ref.counts) == set(COLUMNS)
    assert ref.counts["channel"] == {"ecommerce": 100, "pos": 300}
    assert ref.counts["country"] == {"DE": 400}
    assert sum(ref.counts["amount"].values()) == 400
    assert str(math.floor(math.log10(5.0) * 200)) in ref.counts["amount"]
    with pytest.raises(ModelError):
        EventReference(401, ref.counts)


def test_an_artifact_trained_from_events_carries_their_reference(feature_set, synthetic, tmp_path):
    events = _events(3000)
    labels = [{"event_id": e["event_id"], "label": int(i % 30 == 0)} for i, e in enumerate(events)]
    data = from_events(events, labels, feature_set)
    assert data.events == event_reference(events) and data.take(slice(0, 10)).events is None
    artifact = build(train(data, TrainConfig(mlp=MLPConfig(epochs=2))), data, "kestrel_fraud", 1)
    path = save(artifact, tmp_path)
    assert load(path).reference.events == data.events
    (path / EVENTS_JSON).unlink()
    assert load(path).reference.events is None
    assert synthetic.events is None


def test_an_events_reference_counted_on_another_amount_grid_is_refused(feature_set, tmp_path):
    doc = event_reference(_events(10)).to_json()
    with pytest.raises(ModelError, match="steps"):
        EventReference.from_json({**doc, "amount_steps": 100})
