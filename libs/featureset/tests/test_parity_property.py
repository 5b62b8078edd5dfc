"""Property: the streaming state and the independent numpy recomputation agree on any arrival order, retries too."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestrel.featureset import FeatureSet, parse_feature_set
from kestrel.featureset.offline import compute, duplicates, rejected
from kestrel.featureset.state import DUPLICATE, FeatureComputer

from .conftest import T0, event

# Steps of the arrival clock, and how far behind it an event's time may be: in order, a little
# out of order, near the lateness edge, too late, or days back.
STEP_MS = st.sampled_from([0, 1, 500, 20_000, 59_999, 60_000, 600_000, 3_600_000, 50_000_000])
BEHIND_MS = st.sampled_from([0, 0, 0, 1, 30_000, 299_999, 300_000, 300_001, 3_600_000, 90_000_000])
AMOUNT = st.one_of(st.sampled_from([0.0, 0.1, 10.0, 10.0, 99.99]), st.floats(0, 1e6, allow_nan=False))
# A retry re-sends an earlier event (the last one: at once; any: after others of its card), now and then
# with another time, as a client that stamps each attempt would.
RETRY = st.sampled_from([None, None, None, None, "last", "any", "restamped"])


@st.composite
def arrivals(draw: st.DrawFn) -> list[dict]:
    clock, events = T0, []
    for i in range(draw(st.integers(1, 60))):
        clock += draw(STEP_MS)
        retry = draw(RETRY) if events else None
        if retry:
            again = events[-1] if retry == "last" else draw(st.sampled_from(events))
            events.append(again | ({"event_time": clock - draw(BEHIND_MS)} if retry == "restamped" else {}))
            continue
        events.append(
            event(
                clock - draw(BEHIND_MS),
                draw(AMOUNT),
                entity=draw(st.sampled_from(["a", "b"])),
                merchant=draw(st.sampled_from(["m1", "m2", "m3"])),
                country=draw(st.sampled_from(["DE", "FR"])),
                channel=draw(st.sampled_from(["pos", "ecommerce"])),
                event_id=f"e{i}",
            )
        )
    return events


def outcomes(fs: FeatureSet, events: list[dict]) -> list[object]:
    computer, states, out = FeatureComputer(fs), {}, []
    for e in events:
        state = states.setdefault(e["entity_id"], computer.new_state())
        out.append(None if computer.invalid(e) else computer.update(state, e))
    return out


def stream(fs: FeatureSet, events: list[dict]) -> list[list[float] | None]:
    return [v if isinstance(v, list) else None for v in outcomes(fs, events)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_stream_equals_offline(card: FeatureSet, events: list[dict]) -> None:
    online, offline = stream(card, events), compute(events, card)
    dropped = rejected(events, card) | duplicates(events, card)
    assert [v is None for v in online] == [v is None for v in offline] == list(dropped)
    assert [v is DUPLICATE for v in outcomes(card, events)] == list(duplicates(events, card))
    once = [e for e, d in zip(events, duplicates(events, card)) if not d]  # as if no retry had been sent
    kept = [v for v, d in zip(offline, duplicates(events, card)) if not d]
    for x, y in zip(kept, compute(once, card), strict=True):
        assert x is y is None or np.allclose(x, y, rtol=1e-9, atol=1e-9)  # type: ignore[arg-type]
    for e, a, b in zip(events, online, offline):
        if a is not None:
            diff = [(n, x, y) for n, x, y in zip(card.names, a, b) if x != y]
            assert np.allclose(a, b, rtol=1e-9, atol=1e-9), (e, diff)


def test_unusable_events_are_rejected_by_both(card: FeatureSet) -> None:
    events = [
        event(T0, 1.0),
        event(T0 + 1, float("nan")),
        event(T0 + 2, 2.0),
        event(T0 + 3) | {"country": None},
        event(T0 + 4) | {"event_time": 4.5},
        event(T0 + 5, 3.0),
    ]
    assert (
        [v is None for v in stream(card, events)]
        == [v is None for v in compute(events, card)]
        == [False, True, False, True, True, False]
    )
    assert compute(events, card)[5][card.index["txn_count_1m"]] == 3


def test_retries_are_dropped_while_their_event_is_held(card: FeatureSet) -> None:
    horizon = (card.max_window_s + card.allowed_lateness_s) * 1000
    a, b, c = (event(T0 + i * 1000, 2.0**i, event_id=k) for i, k in enumerate("abc"))
    far = event(T0 + horizon, 8.0, event_id="d")
    events = [a, a, b, a, c, b | {"event_time": T0 + 5000}, far, b, a]
    assert list(duplicates(events, card)) == [False, True, False, True, False, True, False, True, False]
    assert list(rejected(events, card)) == [False] * 8 + [True]  # a has left the state: a late event
    assert stream(card, events) == compute(events, card)
    assert compute(events, card)[4][card.index["txn_count_1m"]] == 3


def _categorical(name: str, source: str, aggregation: str, window_s: int) -> dict:
    return {
        "name": name,
        "dtype": "int",
        "default": 0,
        "source": source,
        "aggregation": aggregation,
        "window_s": window_s,
    }


# Every way the generated code reaches a categorical window: a set built, a set grown from a narrower
# window's, and is_new scanning the slice with or without a set before or after it.
MIXED = parse_feature_set(
    {
        "name": "mixed",
        "version": 1,
        "features": [
            _categorical("m_new_1m", "merchant_id", "is_new", 60),
            _categorical("m_new_1h", "merchant_id", "is_new", 3600),
            _categorical("m_distinct_1d", "merchant_id", "distinct", 86400),
            _categorical("c_distinct_1m", "country", "distinct", 60),
            _categorical("c_new_1d", "country", "is_new", 86400),
            _categorical("ch_new_1m", "channel", "is_new", 60),
            _categorical("ch_distinct_1h", "channel", "distinct", 3600),
            _categorical("ch_new_1h", "channel", "is_new", 3600),
            _categorical("ch_new_1d", "channel", "is_new", 86400),
        ],
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_categorical_windows_in_every_combination_equal_offline(events: list[dict]) -> None:
    assert stream(MIXED, events) == compute(events, MIXED)
