"""The pure core: request validation, freshness flags, predictions and their ids, on plain values."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import replace

import numpy as np
import pytest

from kestrel.common.errors import InvalidArgumentError
from kestrel.common.validation import Limits
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.state import FeatureComputer
from kestrel.inference import core
from kestrel.inference.core import (
    _IDS,
    FALLBACK_MODEL,
    Item,
    Request,
    StreamRows,
    stream_prediction_id,
    valid_prefix,
    validate,
)
from kestrel.online_store import EventLog, LoggedEvent, OnlineBatch

from .support import CARD, event, now_ms

NEVER = np.iinfo(np.int64).max


def online(found, stale=(False, False), stored_time=(0, 0), event_ids=(None, None)) -> OnlineBatch:
    n = len(found)
    return OnlineBatch(
        [f"card-{i}" for i in range(n)],
        np.zeros((n, len(CARD.names))),
        np.array(found),
        np.array(stored_time, dtype=np.int64),
        list(event_ids),
        np.array([5_000 if f else -1 for f in found], dtype=np.int64),
        np.array(stale),
        CARD.version_id,
    )


def test_the_core_imports_no_transport():
    code = (
        "import sys, kestrel.inference.core; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'google', 'confluent_kafka', 'redis'}))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_validate_defaults_the_entity_to_the_events_and_keeps_an_explicit_one():
    t = now_ms()
    requests = [Request(event("card-1", t, 5.0)), Request(event("card-1", t, 5.0), entity_id="acct-9")]
    items = validate(requests, Limits(), t)
    assert [i.entity_id for i in items] == ["card-1", "acct-9"]
    assert items[0].record["amount"] == 5.0 and items[0].record["event_time"] == t


def test_validate_names_every_bad_field_with_its_index():
    t = now_ms()
    requests = [
        Request(event("card-1", t, 5.0)),
        Request(None),
        Request(dict(event("card-1", t, 5.0), currency="euro")),
        Request(event("card-1", t, 5.0), entity_id="has space"),
    ]
    with pytest.raises(InvalidArgumentError) as info:
        validate(requests, Limits(), t, lambda i: f"requests[{i}].")
    fields = [f for f, _ in info.value.violations]
    assert fields == ["requests[1].event", "requests[2].event.currency", "requests[3].entity_id"]


def test_stream_prediction_ids_are_uuid5_of_event_model_and_version():
    namespace = uuid.UUID(bytes=_IDS)
    for event_id in ("e-1", "x" * 200, "é-ü"):
        assert (
            stream_prediction_id(event_id, "kestrel_fraud", "3")
            == uuid.uuid5(namespace, f"{event_id}\x00kestrel_fraud\x003").hex
        )
    assert stream_prediction_id("e-1", "kestrel_fraud", "3") != stream_prediction_id("e-1", "kestrel_fraud", "4")


def test_a_stream_that_turns_invalid_is_answered_up_to_the_bad_request():
    t = now_ms()
    requests = [
        Request(event("card-1", t, 5.0)),
        Request(event("card-2", t, 6.0)),
        Request(None),
        Request(event("card-3", t, 7.0)),
    ]
    assert [i.entity_id for i in valid_prefix(requests, Limits(), t, base=40)] == ["card-1", "card-2"]


def test_freshness_flags_say_why_stored_features_are_not_the_whole_truth():
    t = now_ms()
    items = [Item("card-0", event("card-0", t, 5.0)), Item("card-1", event("card-1", t, 5.0))]
    matrix, flags = core.merge(
        RequestFeatures(CARD), items, online([False, True], stale=(False, True), stored_time=(0, t + 1_000)), False
    )
    assert matrix.shape == (2, len(CARD.names))
    assert flags == [[core.MISSING], [core.STALE, core.NEWER]]
    assert core.merge(RequestFeatures(CARD), items, online([False, False]), True)[1] == [[core.STORE_DOWN]] * 2


def _logged(record: dict) -> LoggedEvent:
    fs = CARD
    return LoggedEvent(
        record["event_time"],
        record["event_id"],
        tuple(record[s] for s in fs.numeric_sources),
        tuple(record[s] for s in fs.categorical_sources),
    )


def test_the_event_log_gives_the_streams_vector_and_an_untrusted_log_flags_the_row():
    t = now_ms()
    # card-0's history: one event left its 1h window long ago, two are inside it, one is newer than the request
    history = [
        event("card-0", t - 5_000_000, 900.0, merchant="m-9"),
        event("card-0", t - 600_000, 20.0, country="DE"),
        event("card-0", t - 1_000, 30.0),
        event("card-0", t + 2_000, 40.0, merchant="m-7"),
    ]
    request = event("card-0", t, 25.0, merchant="m-9", country="DE")
    computer = FeatureComputer(CARD)
    state = computer.new_state()
    for e in history:
        computer.update(state, e)
    expected = computer.features_at(state, request)
    items = [Item("card-0", request), Item("card-1", event("card-1", t, 5.0)), Item("card-2", event("card-2", t, 5.0))]
    stored_ids = (history[-1]["event_id"], "x", "y")
    batch = online([True] * 3, stale=(False,) * 3, stored_time=(t + 2_000, t - 1000, t), event_ids=stored_ids)
    items[2].record["event_id"] = "y"  # card-2's stored vector is the request's own event
    logs = [EventLog.of(0, [_logged(e) for e in history]), EventLog(NEVER), EventLog(NEVER)]
    matrix, flags = core.merge(RequestFeatures(CARD), items, replace(batch, logs=logs), False)
    assert matrix[0].tolist() == pytest.approx(expected, abs=1e-9)
    at = CARD.index
    assert matrix[0, at["txn_count_24h"]] == 4.0  # three prior events and the request; the newer one is not prior
    assert matrix[0, at["merchant_new_24h"]] == 0.0 and matrix[0, at["txn_count_1h"]] == 3.0
    assert flags == [[core.NEWER], [core.APPROXIMATE], []]
    assert matrix[2].tolist() == batch.values[2].tolist()


def test_predictions_decide_at_the_threshold_and_flag_the_fallback():
    t = now_ms()
    items = [Item("card-0", event("card-0", t, 5.0), "r-0"), Item("card-1", event("card-1", t, 5.0))]
    matrix = np.ones((2, 3))
    made = core.predictions(
        items,
        matrix,
        [0.5, 0.49],
        ["1", "1"],
        "kestrel_fraud",
        [5_000, -1],
        [[], [core.NEWER]],
        threshold=0.5,
        feature_set_version="card.v1",
    )
    assert [(p.decision, p.degraded, p.request_id) for p in made] == [(True, False, "r-0"), (False, False, "")]
    assert made[0].features == [1.0, 1.0, 1.0] and made[0].event_id == items[0].record["event_id"]
    assert made[0].prediction_id != made[1].prediction_id
    fallback = core.predictions(
        items,
        matrix,
        [0.2, 0.2],
        ["", ""],
        FALLBACK_MODEL,
        [0, 0],
        [[], []],
        threshold=0.5,
        feature_set_version="card.v1",
    )
    assert all(p.degraded and p.flags == [core.FALLBACK] for p in fallback)


def test_stream_predictions_repeat_their_ids_on_replay():
    rows = StreamRows(["card-0", "card-1"], ["e-0", "e-1"], [1_000, 9_000], np.array([[1.0, 2.0], [3.0, 4.0]]))
    first = core.stream_predictions(
        rows, [0.9, 0.1], ["1", "1"], "kestrel_fraud", 10_000, threshold=0.5, feature_set_version="card.v1"
    )
    again = core.stream_predictions(
        rows, [0.9, 0.1], ["1", "1"], "kestrel_fraud", 20_000, threshold=0.5, feature_set_version="card.v1"
    )
    assert first.prediction_ids == again.prediction_ids
    assert first.prediction_ids[1] == core.stream_prediction_id("e-1", "kestrel_fraud", "1")
    assert (first.decisions, first.ages_ms, first.scores) == ([True, False], [9_000, 1_000], [0.9, 0.1])


def test_stream_ages_are_never_negative():
    rows = StreamRows(["card-0"], ["e-0"], [30_000], np.zeros((1, 2)))
    scored = core.stream_predictions(rows, [0.5], ["1"], "m", 10_000, threshold=0.5, feature_set_version="card.v1")
    assert scored.ages_ms == [0] and scored.decisions == [True]
