"""Which versions inference serves, from lifecycle records alone: pure."""

from __future__ import annotations

from kestrel.inference.serving import ServingState, champion_version


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


def test_without_a_champion_on_the_topic_the_version_serving_at_start_stays_pinned():
    state = ServingState("fraud")
    assert champion_version(state, "", "", ["1"]) == "1"  # at start: the highest version Triton has ready
    state.apply(record("shadow_started", "2"))
    assert champion_version(state, "", "1", ["1", "2"]) == "1"  # the challenger is loaded: still version 1
    # a replica restarted during the shadow: the highest ready version that is not the challenger
    assert champion_version(state, "", "", ["1", "2", "10"]) == "10"
    assert champion_version(ServingState("fraud", challenger="10"), "", "", ["2", "10"]) == "2"
    state.apply(record("promoted", "2"))
    assert champion_version(state, "", "1", ["1", "2"]) == "2"  # the lifecycle's champion takes over


def test_a_pinned_setting_stands_until_the_lifecycle_names_a_champion_and_no_version_means_latest():
    assert champion_version(ServingState("fraud"), "3", "", ["1", "3", "4"]) == "3"
    assert champion_version(ServingState("fraud", champion="4"), "3", "3", ["3", "4"]) == "4"
    assert champion_version(ServingState("fraud"), "", "", []) == ""  # Triton was not up at start: its latest
