"""Changelog encoding of entity state: exact round trips, older formats restored, a clear error for foreign bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.featureset.codec import StateDecodeError, pack_state, packed_watermark, unpack_state
from kestrel.featureset.state import EntityState

from .conftest import T0

TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", "\x1f", "a\x1fb", "é", "[]"]))


@st.composite
def states(draw: st.DrawFn) -> EntityState:
    n = draw(st.integers(0, 30))
    state = EntityState(1, 2)
    state.watermark = draw(st.one_of(st.none(), st.integers(-(2**62), 2**62)))
    state.offset = draw(st.integers(-1, 2**62))
    state.times = sorted(draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)))
    state.ids = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
    state.numeric = [draw(st.lists(st.floats(allow_nan=False), min_size=n, max_size=n))]
    state.categorical = [draw(st.lists(TEXT, min_size=n, max_size=n)) for _ in range(2)]
    return state


@given(states())
def test_round_trip(state: EntityState) -> None:
    back = unpack_state(pack_state(state), 1, 2)
    assert (back.watermark, back.offset, back.times, back.ids, back.numeric, back.categorical) == (
        state.watermark,
        state.offset,
        state.times,
        state.ids,
        state.numeric,
        state.categorical,
    )
    assert packed_watermark(pack_state(state)) == state.watermark


# What format 1 (before event ids were kept) wrote for two events, 1.5 and 2.0, m-1/m-2, DE/FR, offset 7.
FORMAT_1 = bytes.fromhex(
    "010168e5cf8b010000070000000000000002000000010002000068e5cf8b0100000168e5cf8b01000000000000"
    "0000f83f0000000000000040006d2d311f6d2d321f44451f4652"
)


def test_a_format_1_changelog_record_restores_with_its_ids_unknown() -> None:
    state = unpack_state(FORMAT_1, 1, 2)
    assert (state.watermark, state.offset, state.times) == (T0 + 1, 7, [T0, T0 + 1])
    assert state.numeric == [[1.5, 2.0]] and state.categorical == [["m-1", "m-2"], ["DE", "FR"]]
    assert state.ids == [0, 0]  # 0 is no event's id hash: nothing held matches a retry
    assert unpack_state(pack_state(state), 1, 2).ids == [0, 0] and pack_state(state)[0] == 2


def test_layout_mismatch_and_truncation_are_errors() -> None:
    state = EntityState(1, 2)
    state.times, state.ids, state.numeric = [1, 2], [5, 6], [[1.0, 2.0]]
    state.categorical = [["a", "b"], ["c", "d"]]
    data = pack_state(state)
    with pytest.raises(StateDecodeError, match="layout"):
        unpack_state(data, 2, 2)
    with pytest.raises(StateDecodeError, match="layout"):
        unpack_state(b"\x03" + data[1:], 1, 2)
    with pytest.raises(StateDecodeError, match="too short"):
        unpack_state(data[:30], 1, 2)
    with pytest.raises(StateDecodeError, match="categorical"):
        unpack_state(data[:-3], 1, 2)
    strings = len(data) - len("a\x1fb\x1fc\x1fd") - 1
    with pytest.raises(StateDecodeError, match="encoding"):
        unpack_state(data[:strings] + b"\x07" + data[strings + 1 :], 1, 2)
    with pytest.raises(StateDecodeError, match="header"):
        packed_watermark(b"\x01")
