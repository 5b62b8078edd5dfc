"""From what the drill sent and read back to tallies: replays that differ only in wall-clock fields are identical."""

from __future__ import annotations

from kestrel.devstack.drill.counts import ReadBack, tallies

SENT = {"e1": ("c1", 100), "e2": ("c1", 200), "e3": ("c2", 150)}
NEWEST = {"c1": (200, "e2"), "c2": (150, "e3")}


def by_name(got):
    return {t.name: t for t in tallies(SENT, NEWEST, got)}


def clean() -> ReadBack:
    events = [{"event_id": e, "entity_id": c, "event_time": t} for e, (c, t) in SENT.items()]
    return ReadBack(
        events=events,
        features=[{"event_id": e, "computed_at": 1, "v": 1.0} for e in SENT],
        predictions=[{"event_id": e, "source": "stream", "score": 0.1, "predicted_at": 5} for e in SENT],
        logged=[(e, ("p-" + e, "1", 0.1)) for e in SENT],
        log_members=[(e, (t, (1.0,), ("x",))) for e, (_, t) in SENT.items()],
        vectors=dict(NEWEST),
        complete_from={"c1": 0, "c2": 0},
    )


def test_a_clean_read_back_has_nothing_lost_or_duplicated():
    for t in by_name(clean()).values():
        assert (t.lost, t.duplicated, t.foreign) == (0, 0, 0), t


def test_replayed_records_differing_only_in_wall_clock_fields_are_identical_copies():
    got = clean()
    got.features.append({"event_id": "e1", "computed_at": 99, "v": 1.0})
    got.predictions.append({"event_id": "e1", "source": "stream", "score": 0.1, "predicted_at": 77})
    got.predictions.append({"event_id": "e2", "source": "stream", "score": 0.9, "predicted_at": 77})
    t = by_name(got)
    assert (t["features topic"].identical, t["features topic"].differing) == (1, 0)
    assert (t["predictions topic"].identical, t["predictions topic"].differing) == (1, 1)


def test_api_predictions_are_not_the_streams():
    got = clean()
    got.predictions.append({"event_id": "e1", "source": "api", "score": 0.1, "predicted_at": 5})
    assert by_name(got)["predictions topic"].duplicated == 0


def test_a_card_whose_vector_is_not_its_newest_event_is_lost_in_redis():
    got = clean()
    got.vectors["c1"] = (100, "e1")
    assert by_name(got)["Redis vectors"].lost == 1


def test_events_the_log_let_go_are_not_expected_but_missing_ones_are_lost():
    got = clean()
    got.log_members = [m for m in got.log_members if m[0] != "e1"]
    assert by_name(got)["Redis event logs"].lost == 1
    got.complete_from["c1"] = 100
    assert by_name(got)["Redis event logs"].lost == 0


def test_alerts_and_lifecycle_steps_must_appear_once():
    got = clean()
    got.alerts = [{"alert_id": "a"}, {"alert_id": "a"}]
    step = {"model_name": "m", "version": "2", "stage": "promoted", "at": 1}
    got.lifecycle = [step, step | {"at": 2}]
    t = by_name(got)
    assert t["alerts topic"].identical == 1 and t["lifecycle topic"].identical == 1
