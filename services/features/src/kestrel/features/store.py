"""The features state store: entity id -> EntityState per partition, packed with the feature codec."""

from __future__ import annotations

from kestrel.common.stateful import KeyedStateStore
from kestrel.common.validation import Limits
from kestrel.featureset.codec import pack_state, packed_watermark, unpack_state
from kestrel.featureset.state import EntityState, FeatureComputer


class EntityCodec:
    """Packs entity states for the changelog; dates them by their newest event time (the watermark)."""

    def __init__(self, computer: FeatureComputer) -> None:
        self._computer = computer
        self._columns = (len(computer.numeric_sources), len(computer.categorical_sources))

    def new(self) -> EntityState:
        return self._computer.new_state()

    def pack(self, state: EntityState) -> bytes:
        return pack_state(state)

    def unpack(self, packed: bytes) -> EntityState:
        return unpack_state(packed, *self._columns)

    def newest(self, state: EntityState | bytes) -> int | None:
        return packed_watermark(state) if type(state) is bytes else state.watermark  # type: ignore[union-attr]


class StateStore(KeyedStateStore[EntityState]):
    """Entity states of the partitions this worker owns; idle entities are evicted after evict_after_ms."""

    def __init__(
        self,
        computer: FeatureComputer,
        evict_after_ms: int = 2 * 86_400_000,
        max_skew_ms: int = Limits().max_future_skew_ms,
    ) -> None:
        super().__init__(EntityCodec(computer), "features", evict_after_ms, max_skew_ms)
