"""Property: the streaming state and the independent numpy recomputation agree on any arrival order."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestrel.featureset import FeatureSet
from kestrel.featureset.offline import compute, rejected
from kestrel.featureset.state import FeatureComputer

from .conftest import T0, event

# Steps of the arrival clock, and how far behind it an event's time may be: in order, a little
# out of order, near the lateness edge, too late, or days back.
STEP_MS = st.sampled_from([0, 1, 500, 20_000, 59_999, 60_000, 600_000, 3_600_000, 50_000_000])
BEHIND_MS = st.sampled_from([0, 0, 0, 1, 30_000, 299_999, 300_000, 300_001, 3_600_000, 90_000_000])
AMOUNT = st.one_of(st.sampled_from([0.0, 0.1, 10.0, 10.0, 99.99]), st.floats(0, 1e6, allow_nan=False))


@st.composite
def arrivals(draw: st.DrawFn) -> list[dict]:
    clock, events = T0, []
    for i in range(draw(st.integers(1, 60))):
        clock += draw(STEP_MS)
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


def stream(fs: FeatureSet, events: list[dict]) -> list[list[float] | None]:
    computer, states, out = FeatureComputer(fs), {}, []
    for e in events:
        state = states.setdefault(e["entity_id"], computer.new_state())
        result = None if computer.invalid(e) else computer.update(state, e)
        out.append(result if isinstance(result, list) else None)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_stream_equals_offline(card: FeatureSet, events: list[dict]) -> None:
    online, offline = stream(card, events), compute(events, card)
    assert [v is None for v in online] == [v is None for v in offline] == list(rejected(events, card))
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
