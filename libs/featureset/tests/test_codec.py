"""Changelog encoding of entity state: exact round trips, and a clear error for foreign bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.featureset.codec import StateDecodeError, pack_state, packed_watermark, unpack_state
from kestrel.featureset.state import EntityState

TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", "\x1f", "a\x1fb", "é", "[]"]))


@st.composite
def states(draw: st.DrawFn) -> EntityState:
    n = draw(st.integers(0, 30))
    state = EntityState(1, 2)
    state.watermark = draw(st.one_of(st.none(), st.integers(-(2**62), 2**62)))
    state.offset = draw(st.integers(-1, 2**62))
    state.times = sorted(draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)))
    state.numeric = [draw(st.lists(st.floats(allow_nan=False), min_size=n, max_size=n))]
    state.categorical = [draw(st.lists(TEXT, min_size=n, max_size=n)) for _ in range(2)]
    return state


@given(states())
def test_round_trip(state: EntityState) -> None:
    back = unpack_state(pack_state(state), 1, 2)
    assert (back.watermark, back.offset, back.times, back.numeric, back.categorical) == (
        state.watermark,
        state.offset,
        state.times,
        state.numeric,
        state.categorical,
    )
    assert packed_watermark(pack_state(state)) == state.watermark


def test_layout_mismatch_and_truncation_are_errors() -> None:
    state = EntityState(1, 2)
    state.times, state.numeric, state.categorical = [1, 2], [[1.0, 2.0]], [["a", "b"], ["c", "d"]]
    data = pack_state(state)
    with pytest.raises(StateDecodeError, match="layout"):
        unpack_state(data, 2, 2)
    with pytest.raises(StateDecodeError, match="too short"):
        unpack_state(data[:30], 1, 2)
    with pytest.raises(StateDecodeError, match="categorical"):
        unpack_state(data[:-3], 1, 2)
    strings = len(data) - len("a\x1fb\x1fc\x1fd") - 1
    with pytest.raises(StateDecodeError, match="encoding"):
        unpack_state(data[:strings] + b"\x07" + data[strings + 1 :], 1, 2)
    with pytest.raises(StateDecodeError, match="header"):
        packed_watermark(b"\x01")
