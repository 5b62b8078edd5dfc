"""Which versions inference serves, from lifecycle records alone: pure."""

from __future__ import annotations

from kestrel.inference.serving import ServingState


def record(stage: str, version: str, model: str = "fraud") -> dict[str, str]:
    return {"model_name": model, "version": version, "stage": stage}


def test_promotion_shadow_and_rollback_move_the_versions():
    state = ServingState("fraud")
    assert not state.apply(record("trained", "1")) and state.champion is None
    assert state.apply(record("promoted", "1")) and (state.champion, state.challenger) == ("1", None)
    assert state.apply(record("shadow_started", "2")) and state.challenger == "2"
    assert not state.apply(record("promoted", "7", model="other"))  # another model's record
    assert state.apply(record("promoted", "2")) and (state.champion, state.challenger) == ("2", None)
    assert state.apply(record("rolled_back", "1")) and state.champion == "1"


def test_a_rejected_challenger_leaves_the_shadow_and_replays_change_nothing():
    state = ServingState("fraud")
    for r in (record("promoted", "1"), record("shadow_started", "2"), record("rejected", "2")):
        state.apply(r)
    assert (state.champion, state.challenger) == ("1", None)
    assert not state.apply(record("rejected", "2")) and not state.apply(record("promoted", "1"))
    assert not state.apply(record("shadow_started", "1"))  # the champion is not its own challenger
