"""The state of the partitions this worker owns: entity -> state, kept packed until first touched."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Gauge

from kestrel.featureset.codec import pack_state, packed_watermark, unpack_state
from kestrel.featureset.state import EntityState, FeatureComputer

ENTITIES = Gauge("kestrel_features_entities", "Entities held in the state store")

Change = tuple[int, bytes, bytes | None]
"""(partition, key, packed state or None for a deletion): one changelog record."""


class StateStore:
    """Per partition, entity id -> EntityState (or its packed bytes, straight from the changelog).

    Restores only copy bytes; a state is decoded when its entity next has an event, so taking over
    partitions costs little more than reading their changelog.
    """

    def __init__(self, computer: FeatureComputer) -> None:
        self._computer = computer
        self._columns = (len(computer.numeric_sources), len(computer.categorical_sources))
        self._partitions: dict[int, dict[str, EntityState | bytes]] = {}
        self._dirty: dict[int, set[str]] = {}
        self.stream_time: dict[int, int] = {}
        """Newest event time seen per partition: the clock eviction is measured against."""

    @property
    def partitions(self) -> set[int]:
        return set(self._partitions)

    def __len__(self) -> int:
        return sum(len(states) for states in self._partitions.values())

    def state(self, partition: int, entity: str) -> EntityState:
        """The entity's state for update; it is marked changed (written at the next commit)."""
        states = self._partitions[partition]
        state = states.get(entity)
        if state is None:
            state = states[entity] = self._computer.new_state()
        elif type(state) is bytes:
            state = states[entity] = unpack_state(state, *self._columns)
        self._dirty[partition].add(entity)
        return state

    def saw(self, partition: int, event_time: int) -> None:
        if event_time > self.stream_time.get(partition, event_time - 1):
            self.stream_time[partition] = event_time

    def load(self, partition: int, records: Mapping[str, bytes]) -> None:
        """Replace a partition's state with what its changelog holds."""
        self._partitions[partition] = dict(records)
        self._dirty[partition] = set()
        self.stream_time.pop(partition, None)
        ENTITIES.set(len(self))

    def drop(self, partitions: Iterable[int]) -> None:
        for p in list(partitions):
            self._partitions.pop(p, None)
            self._dirty.pop(p, None)
            self.stream_time.pop(p, None)
        ENTITIES.set(len(self))

    def take_changes(self) -> list[Change]:
        """Packed states of the entities changed since the last call."""
        changes: list[Change] = []
        for partition, dirty in self._dirty.items():
            states = self._partitions[partition]
            changes += [(partition, entity.encode(), pack_state(states[entity]))  # type: ignore[arg-type]
                        for entity in dirty]
            dirty.clear()
        return changes

    def evict(self, evict_after_ms: int) -> list[Change]:
        """Forget entities idle for evict_after_ms of their partition's event time; their deletions.

        A full scan, so callers run it now and then, not per batch.
        """
        changes: list[Change] = []
        for partition, newest in self.stream_time.items():
            states, horizon = self._partitions[partition], newest - evict_after_ms
            idle = [entity for entity, state in states.items() if _idle(state, horizon)]
            for entity in idle:
                del states[entity]
                self._dirty[partition].discard(entity)
            changes += [(partition, entity.encode(), None) for entity in idle]
        ENTITIES.set(len(self))
        return changes


def _idle(state: EntityState | bytes, horizon: int) -> bool:
    newest = packed_watermark(state) if type(state) is bytes else state.watermark  # type: ignore[union-attr]
    return newest is not None and newest < horizon
