"""Streaming state math on hand-checked cases: window edges, arrival order, lateness, replays, retries, bounds."""

from __future__ import annotations

import math

import pytest

from kestrel.featureset import FeatureSet, parse_feature_set
from kestrel.featureset.state import DUPLICATE, FeatureComputer, Late, id_hash

from .conftest import T0, event


def vec(card: FeatureSet, values: list[float]) -> dict[str, float]:
    return dict(zip(card.names, values))


def run(computer: FeatureComputer, events: list[dict]) -> list[dict[str, float] | Late | None]:
    state = computer.new_state()
    out = []
    for e in events:
        r = computer.update(state, e)
        out.append(vec(computer.feature_set, r) if isinstance(r, list) else r)
    return out


def test_first_event_sees_only_itself(computer: FeatureComputer, card: FeatureSet) -> None:
    (v,) = run(computer, [event(T0 + 5 * 3_600_000 + 1, amount=42.0)])
    assert v["amount"] == 42.0 and v["txn_count_24h"] == 1 and v["amount_mean_1h"] == 42.0
    assert v["amount_std_24h"] == 0.0 and v["merchant_distinct_24h"] == 1
    assert v["hour_of_day"] == (T0 // 3_600_000 + 5) % 24
    for name in ("seconds_since_prev", "amount_rel_mean_24h", "amount_zscore_24h", "merchant_new_24h"):
        assert v[name] == card.defaults[card.index[name]]


def test_window_is_open_at_t_minus_w_and_closed_at_t(computer: FeatureComputer) -> None:
    *_, edge, inside = run(computer, [event(T0, 1.0), event(T0 + 60_000, 2.0), event(T0 + 60_001, 4.0)])
    assert edge["txn_count_1m"] == 1 and edge["txn_count_1h"] == 2  # T0 is exactly 60 s before: out
    assert inside["txn_count_1m"] == 2 and inside["amount_sum_1m"] == 6.0 and inside["amount_max_1m"] == 4.0


def test_mean_std_and_prior_features(computer: FeatureComputer) -> None:
    amounts = [10.0, 20.0, 30.0, 100.0]
    *_, v = run(computer, [event(T0 + i * 1000, a, merchant=f"m-{i % 2}") for i, a in enumerate(amounts)])
    assert v["amount_mean_24h"] == pytest.approx(40.0)
    assert v["amount_std_24h"] == pytest.approx(math.sqrt(sum((a - 40) ** 2 for a in amounts) / 4))
    assert v["amount_rel_mean_24h"] == pytest.approx(100.0 / 20.0)
    assert v["amount_zscore_24h"] == pytest.approx((100 - 20) / math.sqrt(200 / 3))
    assert v["seconds_since_prev"] == 1.0
    assert v["merchant_distinct_24h"] == 2 and v["merchant_new_24h"] == 0.0 and v["country_new_24h"] == 0.0


def test_equal_amounts_have_zero_spread_and_default_zscore(computer: FeatureComputer) -> None:
    *_, v = run(computer, [event(T0 + i, 0.1) for i in range(5)])
    assert v["amount_std_24h"] < 1e-15
    assert v["amount_zscore_24h"] == 0.0


def test_out_of_order_event_counts_for_later_events_not_earlier_ones(computer: FeatureComputer) -> None:
    a, b, late_arrival, c = run(
        computer, [event(T0, 1.0), event(T0 + 10_000, 2.0), event(T0 + 5_000, 4.0), event(T0 + 20_000, 8.0)]
    )
    assert b["txn_count_1m"] == 2  # the T0+5s event had not arrived yet
    assert late_arrival["txn_count_1m"] == 2 and late_arrival["amount_sum_1m"] == 5.0  # sees T0, not T0+10s
    assert late_arrival["seconds_since_prev"] == 5.0
    assert c["txn_count_1m"] == 4 and c["amount_sum_1m"] == 15.0


def test_events_beyond_the_allowed_lateness_are_rejected(computer: FeatureComputer, card: FeatureSet) -> None:
    lateness = card.allowed_lateness_s * 1000
    _, on_edge, too_late, after = run(
        computer, [event(T0 + lateness, 1.0), event(T0, 2.0), event(T0 - 1, 4.0), event(T0 + lateness + 1, 8.0)]
    )
    assert isinstance(on_edge, dict) and isinstance(too_late, Late)
    assert too_late.reason.startswith(f"late event: {lateness + 1} ms behind")
    assert f"allowed lateness {lateness} ms" in too_late.reason
    assert after["txn_count_1h"] == 3  # the rejected event never entered the windows


def test_replayed_offsets_are_skipped(computer: FeatureComputer) -> None:
    state = computer.new_state()
    assert isinstance(computer.update(state, event(T0), offset=7), list)
    assert computer.update(state, event(T0), offset=7) is None
    assert computer.update(state, event(T0 + 1), offset=8)[2] == 2  # txn_count_1m


def test_a_retried_event_id_changes_nothing(computer: FeatureComputer) -> None:
    state = computer.new_state()
    first = computer.update(state, event(T0, 5.0, event_id="e-1"))
    held = (state.watermark, list(state.times), list(state.ids), [list(c) for c in state.numeric])
    assert computer.update(state, event(T0, 5.0, event_id="e-1")) is DUPLICATE
    assert computer.update(state, event(T0 + 9, 7.0, event_id="e-1")) is DUPLICATE  # by id, whatever it says
    assert (state.watermark, state.times, state.ids, state.numeric) == held and state.ids == [id_hash("e-1")]
    assert computer.update(state, event(T0 + 10, 5.0, event_id="e-2"))[2] == 2  # txn_count_1m: e-1 once
    assert isinstance(first, list)


def test_a_retry_is_recognised_while_its_event_is_held_even_past_the_lateness(
    computer: FeatureComputer, card: FeatureSet
) -> None:
    state = computer.new_state()
    horizon = (card.max_window_s + card.allowed_lateness_s) * 1000
    computer.update(state, event(T0, event_id="e-1"))
    computer.update(state, event(T0 + horizon - 1, event_id="e-2"))
    assert computer.update(state, event(T0, event_id="e-1")) is DUPLICATE  # 24h5m - 1 ms behind: still held
    assert computer.update(state, event(T0, event_id="e-3")) == Late(T0, T0 + horizon - 1, computer.lateness_ms)
    computer.update(state, event(T0 + horizon, event_id="e-4"))
    assert isinstance(computer.update(state, event(T0, event_id="e-1")), Late)  # gone from the state: late


def test_only_events_the_state_holds_make_retries(computer: FeatureComputer, card: FeatureSet) -> None:
    state = computer.new_state()
    lateness = card.allowed_lateness_s * 1000
    computer.update(state, event(T0 + lateness + 1, event_id="e-1"))
    assert isinstance(computer.update(state, event(T0, event_id="e-0")), Late)
    assert isinstance(computer.update(state, event(T0, event_id="e-0")), Late)  # never applied: late again
    assert computer.update(state, event(T0 + lateness + 1, event_id="e-1")) is DUPLICATE
    other = computer.new_state()  # the same id in another card's state is another event
    assert isinstance(computer.update(other, event(T0 + lateness + 1, event_id="e-1", entity="card-2")), list)


def test_id_hashes_are_stable_and_never_zero() -> None:
    assert id_hash("e-1") == id_hash("e-1") != id_hash("e-2")
    assert id_hash("e-1") == int.from_bytes(bytes.fromhex("317386494bf10d9f"), "little", signed=True)
    assert 0 not in {id_hash(f"e-{i}") for i in range(10_000)}


def test_state_keeps_only_what_future_windows_can_see(computer: FeatureComputer, card: FeatureSet) -> None:
    state = computer.new_state()
    horizon = (card.max_window_s + card.allowed_lateness_s) * 1000
    for t in (T0, T0 + 1, T0 + 2, T0 + horizon + 1):
        computer.update(state, event(t))
    # The earliest event still accepted is at T0 + 1 + W: its window (T0 + 1, ...] excludes T0 + 1.
    assert state.times == [T0 + 2, T0 + horizon + 1]


def test_entities_are_bounded_and_truncation_counted(card: FeatureSet) -> None:
    doc = {
        "name": "small",
        "version": 1,
        "max_events_per_entity": 3,
        "features": [
            {"name": "n", "dtype": "int", "default": 0, "source": "event_id", "aggregation": "count", "window_s": 60}
        ],
    }
    computer = FeatureComputer(parse_feature_set(doc))
    state = computer.new_state()
    counts = [computer.update(state, event(T0 + i))[0] for i in range(5)]
    assert counts == [1, 2, 3, 4, 4] and len(state) == 3 and computer.truncated == 2
    # A retry of a forgotten event cannot be recognised: it counts again (docs/features.md, Retried events).
    assert computer.update(state, event(T0)) == [1.0] and computer.truncated == 3
    assert computer.update(state, event(T0 + 4)) is DUPLICATE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": float("nan")}, "non-finite or mistyped amount"),
        ({"amount": float("inf")}, "mistyped amount"),
        ({"amount": "12"}, "mistyped amount"),
        ({"country": None}, "mistyped country"),
        ({"event_time": 1.5}, "integer milliseconds"),
    ],
)
def test_unusable_events_are_named(computer: FeatureComputer, change: dict, reason: str) -> None:
    assert reason in computer.invalid(event(T0) | change)
    assert computer.invalid(event(T0)) is None


def test_generated_source_is_readable(computer: FeatureComputer) -> None:
    assert computer.source.startswith("def fill(") and "# window 86400 s" in computer.source
