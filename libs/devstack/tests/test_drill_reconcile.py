"""The drill's counting: lost, identical and differing copies, foreign records, dead letters, verdicts."""

from __future__ import annotations

from kestrel.devstack.drill.reconcile import Expectation, Tally, dead_letters, fingerprint, problems, tally


def test_every_id_once_is_held_with_nothing_lost_or_duplicated():
    assert tally("t", {"a", "b"}, [("a", 1), ("b", 2)]) == Tally("t", 2, 2, 0, 0, 0, 0)


def test_missing_ids_are_lost():
    assert tally("t", {"a", "b", "c"}, [("b", 1)]).lost == 2


def test_extra_copies_are_identical_or_differing_by_content():
    found = [("a", 1), ("a", 1), ("a", 1), ("b", 1), ("b", 2)]
    t = tally("t", {"a", "b"}, found)
    assert (t.held, t.copies, t.identical, t.differing, t.duplicated) == (2, 5, 2, 1, 3)


def test_ids_nobody_sent_are_foreign_not_held():
    t = tally("t", {"a"}, [("a", 1), ("z", 1), ("z", 1)])
    assert (t.held, t.copies, t.foreign, t.duplicated) == (1, 1, 2, 0)


def test_without_expected_ids_nothing_is_lost_and_repeats_count():
    t = tally("alerts", None, [("x", 1), ("x", 1), ("y", 1)])
    assert (t.held, t.lost, t.identical) == (2, 0, 1)


def test_fingerprint_ignores_volatile_fields_and_key_order():
    a = {"id": "1", "score": 0.5, "predicted_at": 10}
    b = {"predicted_at": 99, "score": 0.5, "id": "1"}
    assert fingerprint(a, {"predicted_at"}) == fingerprint(b, {"predicted_at"})
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a, {"predicted_at"}) != fingerprint(a | {"score": 0.6}, {"predicted_at"})


def test_dead_letters_count_by_service_and_error_type():
    records = [
        {"service": "features", "error_type": "SerializationError"},
        {"service": "ingest", "error_type": "ValidationError"},
        {"service": "features", "error_type": "SerializationError"},
    ]
    assert dead_letters(records) == {"features: SerializationError": 2, "ingest: ValidationError": 1}


def test_topics_may_repeat_identically_but_stores_may_not():
    topic, store = Tally("topic", 5, 7, 0, 2, 0), Tally("store", 5, 7, 0, 2, 0)
    expect = {"topic": Expectation(store=False), "store": Expectation(store=True)}
    assert problems([topic], expect) == []
    assert problems([store], expect) == ["store: 2 duplicates (must hold each id once)"]


def test_loss_and_differing_copies_fail_anywhere():
    t = Tally("topic", 5, 6, 1, 0, 1)
    assert problems([t], {"topic": Expectation(store=False)}) == [
        "topic: 1 lost",
        "topic: 1 duplicates with differing content",
    ]
