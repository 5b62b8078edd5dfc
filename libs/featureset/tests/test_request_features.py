"""Request-time features: the stored vector of e_(k-1) advanced by e_k must equal the offline vector of e_k."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestrel.common.errors import InvalidArgumentError
from kestrel.featureset import FeatureDefinitionError, FeatureSet, FeatureSpec, load_feature_set
from kestrel.featureset.offline import compute
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.state import EntityState, FeatureComputer, id_hash

T0 = 1_700_000_000_000 + 7 * 3_600_000 + 123
S, M, H, D = 1000, 60_000, 3_600_000, 86_400_000
CATEGORICAL = (
    "merchant_distinct_1h",
    "merchant_distinct_24h",
    "country_distinct_1h",
    "country_distinct_24h",
    "mcc_distinct_24h",
    "merchant_new_24h",
    "country_new_24h",
    "channel_new_24h",
)


def event(
    t: int,
    amount: float,
    i: int = 0,
    merchant: str = "m1",
    country: str = "DE",
    channel: str = "pos",
    mcc: str = "5411",
) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "entity_id": "card-1",
        "event_time": int(t),
        "amount": float(amount),
        "currency": "EUR",
        "merchant_id": merchant,
        "merchant_category": mcc,
        "country": country,
        "channel": channel,
        "attributes": {},
    }


def card_events(offsets_ms: list[int], amounts: list[float]) -> list[dict[str, Any]]:
    """One card's payments in time order, cycling merchants, countries and channels."""
    return [
        event(
            T0 + dt,
            a,
            i,
            merchant=f"m{i % 3}",
            country=("DE", "FR")[i % 5 == 4],
            channel=("pos", "ecommerce")[i % 2],
            mcc=f"54{i % 4}",
        )
        for i, (dt, a) in enumerate(zip(offsets_ms, amounts))
    ]


def offline(fs: FeatureSet, events: list[dict[str, Any]]) -> np.ndarray:
    vectors = compute(events, fs)
    assert all(v is not None for v in vectors)
    return np.array(vectors, dtype=np.float64)


def chain(rf: RequestFeatures, events: list[dict[str, Any]], vectors: np.ndarray) -> np.ndarray:
    """Row k-1: the merge of e_(k-1)'s offline vector (as stored) with e_k."""
    t = np.array([e["event_time"] for e in events], dtype=np.int64)
    x = np.array([e["amount"] for e in events])
    found = np.ones(len(events) - 1, dtype=bool)
    return rf.merge(vectors[:-1], found, t[:-1], x[1:], t[1:])


def clean(fs: FeatureSet, events: list[dict[str, Any]]) -> np.ndarray:
    """bool (k-1, F): no event of e_(k-1)'s window for the feature fell out of the window by e_k's time."""
    t = np.array([e["event_time"] for e in events], dtype=np.int64)
    out = np.ones((len(t) - 1, len(fs.features)), dtype=bool)
    for k in range(1, len(t)):
        for j, f in enumerate(fs.features):
            if f.window_s is not None and t[k] - t[k - 1] < f.window_s * 1000:
                w = f.window_s * 1000
                out[k - 1, j] = not np.any((t[:k] > t[k - 1] - w) & (t[:k] <= t[k] - w))
    return out


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.isclose(a, b, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def card() -> FeatureSet:
    return load_feature_set("card")


@pytest.fixture(scope="module")
def rf(card: FeatureSet) -> RequestFeatures:
    return RequestFeatures(card)


def columns(card: FeatureSet, names: list[str]) -> list[int]:
    return [card.index[n] for n in names]


# Bursts shorter than 1m, an hour or more apart (a day apart across the 24h gap): nothing ever expires part-way.
CLEAN_OFFSETS = [
    0,
    10 * S,
    25 * S,
    40 * S,
    59 * S,  # burst: 1m, 1h, 24h advance
    2 * H,
    2 * H + 30 * S,
    2 * H + 50 * S,  # > 1h gap: 1m and 1h alone, 24h advances
    5 * H,
    5 * H,  # same millisecond twice
    5 * H + 61 * M,
    5 * H + 61 * M + 1,  # 61 min later, then 1 ms later
    5 * H + 61 * M + 1 + 25 * H,  # > 24h gap: every window alone
    5 * H + 61 * M + 1 + 25 * H + 20 * S,
    5 * H + 61 * M + 1 + 25 * H + 30 * S,
]
CLEAN_AMOUNTS = [12.5, 3.99, 250.0, 250.0, 0.0, 80.0, 1200.0, 15.25, 15.25, 15.25, 999.99, 1.0, 42.0, 42.0, 7.5]


def test_parity_on_a_card_where_no_event_expires_part_way(card: FeatureSet, rf: RequestFeatures) -> None:
    events = card_events(CLEAN_OFFSETS, CLEAN_AMOUNTS)
    vectors = offline(card, events)
    assert clean(card, events).all()  # the construction holds, so every exact feature must match everywhere
    merged = chain(rf, events, vectors)
    exact = columns(card, rf.exact)
    bad = [
        (k + 1, card.names[j], merged[k, j], vectors[k + 1, j])
        for k, j in zip(*np.nonzero(~close(merged[:, exact], vectors[1:, exact])))
    ]
    assert not bad
    gaps = np.diff([e["event_time"] for e in events])
    for w in (M, H, D):  # both rules of every window are exercised
        assert (gaps >= w).any() and (gaps < w).any()
    # zscore and ratio were computed from real priors, not left at their defaults
    assert (vectors[1:, card.index["amount_zscore_24h"]] != 0).sum() >= 5
    assert (vectors[1:, card.index["amount_rel_mean_24h"]] != 1).sum() >= 5


@pytest.mark.parametrize(
    ("amounts", "rel", "z"),
    [
        ([0.1, 0.1, 0.1, 0.1, 7.0], 70.0, None),  # float noise (std ~1e-17) is no spread
        ([0.5, 0.5 + 1.5e-9, 2.0], 2.0 / (0.5 + 0.75e-9), None),  # spread under FLAT_SPREAD x max(1, mean)
        ([0.0, 0.0, 3.0], None, None),  # zero prior mean: ratio and zscore at their defaults
        ([0.0, 0.0002, 5.0], 50_000.0, (5.0 - 0.0001) / 0.0001),  # a tiny mean still divides
        ([40.0, 9.0], 9.0 / 40.0, None),  # one prior payment: no zscore
    ],
)
def test_prior_edges_follow_offline(
    card: FeatureSet, rf: RequestFeatures, amounts: list[float], rel: float | None, z: float | None
) -> None:
    events = card_events([i * S for i in range(len(amounts))], amounts)
    vectors = offline(card, events)
    merged = chain(rf, events, vectors)
    exact = columns(card, rf.exact)
    assert close(merged[:, exact], vectors[1:, exact]).all()
    expected = {"amount_rel_mean_24h": 1.0 if rel is None else rel, "amount_zscore_24h": 0.0 if z is None else z}
    for name, value in expected.items():
        assert merged[-1, card.index[name]] == pytest.approx(value, rel=1e-9), name


def test_the_vector_rule_bounds_the_set_features_on_a_clean_card(card: FeatureSet, rf: RequestFeatures) -> None:
    events = card_events(CLEAN_OFFSETS, CLEAN_AMOUNTS)
    vectors = offline(card, events)
    merged, truth = chain(rf, events, vectors), vectors[1:]
    distinct = [card.index[n] for n in CATEGORICAL if "distinct" in n]
    assert (merged[:, distinct] <= truth[:, distinct]).all()  # a lower bound, by at most the request's value
    assert (truth[:, distinct] <= merged[:, distinct] + 1).all()
    gaps = np.diff([e["event_time"] for e in events])
    for name in CATEGORICAL:  # inside the window: the stored count of distinct values, the default for is_new
        j, inside = card.index[name], gaps < card[name].window_s * 1000
        rule = vectors[:-1, j] if "distinct" in name else card.defaults[j]
        assert np.array_equal(merged[inside, j], np.broadcast_to(rule, merged.shape[:1])[inside]), name
    after_a_day = gaps >= D
    assert np.array_equal(merged[after_a_day], truth[after_a_day])  # every feature exact after a day's silence


def test_expired_events_make_an_over_count_not_garbage(card: FeatureSet, rf: RequestFeatures) -> None:
    events = card_events([0, 30 * S, 70 * S, 100 * S], [100.0, 5.0, 7.0, 1.0])
    vectors = offline(card, events)
    merged, truth, ok = chain(rf, events, vectors), vectors[1:], clean(card, events)
    assert not ok[1, card.index["txn_count_1m"]]  # at 70 s the payment at 0 s left the 1m window
    assert merged[1, card.index["txn_count_1m"]] == truth[1, card.index["txn_count_1m"]] + 1
    assert merged[1, card.index["amount_sum_1m"]] == pytest.approx(truth[1, card.index["amount_sum_1m"]] + 100.0)
    assert merged[1, card.index["amount_max_1m"]] == 100.0 > truth[1, card.index["amount_max_1m"]]
    assert merged[1, card.index["amount_mean_1m"]] == pytest.approx((100 + 5 + 7) / 3)  # of the stale window
    assert np.isfinite(merged).all()
    exact = columns(card, rf.exact)
    assert close(merged[:, exact], truth[:, exact])[ok[:, exact]].all()  # the 1h and 24h windows stay exact


def test_first_event_equals_offline_on_every_feature(card: FeatureSet, rf: RequestFeatures) -> None:
    events = [event(T0 + 13 * H, 77.7, 0), event(T0 + 40 * H, 0.0, 1, merchant="m9", country="US")]
    truth = np.array([offline(card, [e])[0] for e in events])
    stored = np.tile(np.array(card.defaults), (2, 1))
    merged = rf.merge(
        stored,
        np.zeros(2, dtype=bool),
        np.full(2, 123, dtype=np.int64),
        np.array([77.7, 0.0]),
        np.array([T0 + 13 * H, T0 + 40 * H], dtype=np.int64),
    )
    assert np.array_equal(merged, truth)
    assert merged[0, card.index["merchant_new_24h"]] == 1.0 and merged[0, card.index["txn_count_24h"]] == 1.0


def test_rows_already_including_the_event_come_back_as_stored(card: FeatureSet, rf: RequestFeatures) -> None:
    events = card_events([0, 10 * S, 20 * S], [10.0, 20.0, 30.0])
    vectors = offline(card, events)
    stored = vectors[[1, 1]].copy()
    before = stored.copy()
    merged = rf.merge(
        stored,
        np.ones(2, dtype=bool),
        np.full(2, T0 + 10 * S, dtype=np.int64),
        np.array([20.0, 30.0]),
        np.array([T0 + 10 * S, T0 + 20 * S], dtype=np.int64),
        included=np.array([True, False]),
    )
    assert np.array_equal(merged[0], vectors[1])
    assert close(merged[1, columns(card, rf.exact)], vectors[2, columns(card, rf.exact)]).all()
    assert np.array_equal(stored, before) and merged is not stored


def test_late_event_keeps_windows_and_takes_event_level_features(card: FeatureSet, rf: RequestFeatures) -> None:
    events = card_events([0, 10 * S, 20 * S], [10.0, 20.0, 60.0])
    stored = offline(card, events)[-1:]
    t = T0 + 20 * S - 4 * M - 59 * M  # 63 minutes behind: another UTC hour
    (merged,) = rf.merge(stored, np.array([True]), np.array([T0 + 20 * S]), np.array([45.0]), np.array([t]))
    mean, std = stored[0, card.index["amount_mean_24h"]], stored[0, card.index["amount_std_24h"]]
    event_level = {
        "amount": 45.0,
        "hour_of_day": float((t // H) % 24),
        "amount_rel_mean_24h": 45.0 / mean,
        "amount_zscore_24h": (45.0 - mean) / std,
    }
    for name, value in event_level.items():
        assert merged[card.index[name]] == pytest.approx(value, rel=1e-12), name
    assert merged[card.index["hour_of_day"]] != stored[0, card.index["hour_of_day"]]
    kept = [j for j, n in enumerate(card.names) if n not in event_level]
    assert np.array_equal(merged[kept], stored[0, kept])


def test_contract_shape_dtype_and_lists(card: FeatureSet, rf: RequestFeatures) -> None:
    assert sorted(rf.exact + rf.approximate) == sorted(card.names) and not set(rf.exact) & set(rf.approximate)
    assert rf.exact == [n for n in card.names if n in rf.exact]  # definition order
    assert rf.approximate == list(CATEGORICAL) and rf.source == "amount"  # merge: the fallback without the log
    empty = rf.merge(
        np.empty((0, len(card.names))), np.empty(0, bool), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    )
    assert empty.shape == (0, len(card.names)) and empty.dtype == np.float64
    stored = np.tile(np.array(card.defaults), (3, 1))
    out = rf.merge(stored, np.zeros(3, bool), np.zeros(3, np.int64), np.array([1, 2, 3]), np.full(3, T0))
    assert out.shape == (3, len(card.names)) and out.dtype == np.float64 and out is not stored
    assert np.array_equal(stored, np.tile(np.array(card.defaults), (3, 1)))
    with pytest.raises(InvalidArgumentError, match="stored"):
        rf.merge(stored[:, 1:], np.zeros(3, bool), np.zeros(3, np.int64), np.ones(3), np.full(3, T0))


GAP_MS = st.sampled_from([0, 1, 999, 20 * S, 59_999, M, M + 1, 10 * M, H - 1, H, 2 * H, 23 * H, D - 1, D, 2 * D])
AMOUNT = st.one_of(st.sampled_from([0.0, 0.01, 10.0, 10.0, 99.99]), st.integers(0, 10**7).map(lambda c: c / 100))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(GAP_MS, AMOUNT), min_size=2, max_size=14))
def test_exact_features_match_offline_wherever_nothing_expired(
    card: FeatureSet, rf: RequestFeatures, steps: list[tuple[int, float]]
) -> None:
    offsets = np.cumsum([gap for gap, _ in steps]).tolist()
    events = card_events(offsets, [a for _, a in steps])
    vectors = offline(card, events)
    merged, ok = chain(rf, events, vectors), clean(card, events)
    exact = columns(card, rf.exact)
    assert close(merged[:, exact], vectors[1:, exact])[ok[:, exact]].all()
    assert np.isfinite(merged).all()


def _custom() -> FeatureSet:
    spec = FeatureSpec
    return FeatureSet(
        "custom",
        1,
        (
            spec("amount", "float", 0.0, "amount", "value"),
            spec("n_10m", "int", 0.0, "merchant_id", "count", 600),  # counts events whatever field it names
            spec("min_10m", "float", 0.0, "amount", "min", 600),
            spec("mean_10m", "float", 0.0, "amount", "mean", 600),
            spec("std_1h", "float", 0.0, "amount", "std", 3600),  # no 1h count: cannot be advanced
            spec("mean_1h_nocount", "float", 0.0, "amount", "mean", 3600),
            spec("z_1h", "float", -5.0, "amount", "zscore", 3600),  # exact: reads the stored 1h mean and std
            spec("rel_10m", "float", 1.0, "amount", "ratio_to_mean", 600),
        ),
    )


def test_siblings_decide_what_is_exact() -> None:
    fs = _custom()
    rf = RequestFeatures(fs)
    assert rf.exact == ["amount", "n_10m", "min_10m", "mean_10m", "z_1h", "rel_10m"]
    assert rf.approximate == ["std_1h", "mean_1h_nocount"]
    events = card_events([0, 5 * S, 30 * S, 9 * M, 25 * M, 26 * M], [30.0, 12.0, 50.0, 8.0, 70.0, 20.0])
    vectors = offline(fs, events)
    merged, ok = chain(rf, events, vectors), clean(fs, events)
    exact = [fs.index[n] for n in rf.exact]
    assert close(merged[:, exact], vectors[1:, exact])[ok[:, exact]].all()
    assert (vectors[1:, fs.index["min_10m"]] < vectors[1:, fs.index["amount"]]).any()
    approx = [fs.index[n] for n in rf.approximate]  # all gaps are under 1h: kept as stored
    assert np.array_equal(merged[:, approx], vectors[:-1, approx])


def test_a_zscore_without_its_std_takes_its_default_inside_the_window() -> None:
    fs = FeatureSet(
        "z",
        1,
        (FeatureSpec("m", "float", 0.0, "amount", "mean", 60), FeatureSpec("z", "float", -5.0, "amount", "zscore", 60)),
    )
    rf = RequestFeatures(fs)
    assert rf.approximate == ["m", "z"]
    out = rf.merge(
        np.array([[10.0, 3.0], [10.0, 3.0]]),
        np.array([True, True]),
        np.array([T0, T0]),
        np.array([20.0, 20.0]),
        np.array([T0 + 1, T0 + M]),
    )
    assert out.tolist() == [[10.0, -5.0], [20.0, -5.0]]


def test_more_than_one_numeric_source_is_refused() -> None:
    fs = FeatureSet(
        "two", 1, (FeatureSpec("a", "float", 0.0, "amount", "value"), FeatureSpec("b", "float", 0.0, "fee", "sum", 60))
    )
    with pytest.raises(FeatureDefinitionError, match="amount, fee"):
        RequestFeatures(fs)


CATEGORY = st.tuples(st.sampled_from(["m0", "m1", "m2", "m3"]), st.sampled_from(["DE", "FR", "PL"]))


class LogColumns(NamedTuple):
    """An event log column by column, as the online store reads it back (EventColumns)."""

    times: list[int]
    ids: list[str]
    numbers: list[list[float]]
    categories: list[list[str]]


def held(state: EntityState) -> LogColumns:
    """The events a stream state holds, as the online store's event log gives them back (ids as the log keeps
    them: the state keeps only their hashes, so the test maps them back)."""
    return LogColumns(list(state.times), [IDS[h] for h in state.ids], state.numeric, state.categorical)


IDS: dict[int, str] = {}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(-H // 12, 3 * H), CATEGORY, AMOUNT), min_size=2, max_size=16),
    st.lists(st.integers(0, 15), max_size=3),
)
def test_from_log_is_the_streams_vector_for_every_feature(
    card: FeatureSet,
    rf: RequestFeatures,
    steps: list[tuple[int, tuple[str, str], float]],
    retried: list[int],
) -> None:
    """Events in arrival order, some out of order (up to the allowed lateness and beyond), some windows
    expiring part-way, some re-sent: for every event the stream applies, the vector computed from the events
    its state held (the online store's event log) equals the stream's, all 28 features."""
    events, t = [], T0
    for i, (gap, (m, c), x) in enumerate(steps):
        t += gap
        events.append(event(t, x, i, merchant=m, country=c, channel=("pos", "ecommerce")[i % 3 == 0], mcc=m[-1]))
    events += [dict(events[k]) for k in retried if k < len(events)]  # retries re-send the same event id
    IDS.update({id_hash(e["event_id"]): e["event_id"] for e in events})
    computer, compared = FeatureComputer(card), 0
    state = computer.new_state()
    for e in events:
        log = held(state)
        served = rf.from_log(log, e)
        streamed = computer.update(state, e)
        if isinstance(streamed, list):
            assert close(np.array(served), np.array(streamed)).all(), (e, served, streamed)
            compared += 1
    assert compared >= 1


def test_from_log_leaves_the_requests_own_event_out(card: FeatureSet, rf: RequestFeatures) -> None:
    """A request whose event the log already holds (a re-score) is computed as if it arrived now."""
    events = card_events([0, 10 * S, 20 * S], [1.0, 2.0, 3.0])

    def log(rows: list[dict[str, Any]]) -> LogColumns:
        return LogColumns(
            [e["event_time"] for e in rows],
            [e["event_id"] for e in rows],
            [[e["amount"] for e in rows]],
            [[e[s] for e in rows] for s in card.categorical_sources],
        )

    again = rf.from_log(log(events), events[1])
    assert again[card.index["txn_count_1m"]] == 2.0  # events 0 and 1; 2 is later, 1 itself is not counted twice
    assert again == rf.from_log(log(events[:1] + events[2:]), events[1])
