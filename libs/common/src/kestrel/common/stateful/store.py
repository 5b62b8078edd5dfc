"""Keyed state per source partition, kept packed until first touched; tracks changes and evicts idle keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, Protocol, TypeVar

from prometheus_client import Gauge

from kestrel.common.validation import Limits

S = TypeVar("S")

KEYS = Gauge("kestrel_state_keys", "Keys held in a state store", ["store"])

Change = tuple[int, bytes, bytes | None]
"""(partition, key, packed state or None for a deletion): one changelog record."""


class StateStore(Protocol):
    """What the stateful loop needs from a store: the partitions it holds, changes to write, restore, evict."""

    @property
    def partitions(self) -> set[int]: ...

    def __len__(self) -> int: ...

    def take_changes(self) -> list[Change]: ...

    def load(self, partition: int, records: Mapping[str, bytes]) -> None: ...

    def drop(self, partitions: Iterable[int]) -> None: ...

    def evict(self, now_ms: int) -> list[Change]: ...


class StateCodec(Protocol[S]):
    """How one key's state is made, packed for the changelog, unpacked, and dated for eviction."""

    def new(self) -> S: ...

    def pack(self, state: S) -> bytes: ...

    def unpack(self, packed: bytes) -> S: ...

    def newest(self, state: S | bytes) -> int | None:
        """Newest event time (ms) the state holds, packed or not; None when it holds none."""
        ...


class KeyedStateStore(Generic[S]):
    """Per partition, key -> state (or its packed bytes, straight from the changelog).

    Restores only copy bytes; a state is decoded when its key next has an event, so taking over
    partitions costs little more than reading their changelog.

    Eviction forgets keys idle for `evict_after_ms` of their partition's stream time (the newest event
    time seen), capped at wall clock + `max_skew_ms` (by default ingest's bound on event times): one
    event stamped far ahead cannot age a whole partition at once.
    """

    def __init__(
        self, codec: StateCodec[S], name: str, evict_after_ms: int, max_skew_ms: int = Limits().max_future_skew_ms
    ) -> None:
        self._codec, self._keys = codec, KEYS.labels(name)
        self.evict_after_ms, self.max_skew_ms = evict_after_ms, max_skew_ms
        self._partitions: dict[int, dict[str, S | bytes]] = {}
        self._dirty: dict[int, set[str]] = {}
        self.stream_time: dict[int, int] = {}
        """Newest event time seen per partition: the clock eviction is measured against."""

    @property
    def partitions(self) -> set[int]:
        return set(self._partitions)

    def __len__(self) -> int:
        return sum(len(states) for states in self._partitions.values())

    def state(self, partition: int, key: str) -> S:
        """The key's state for update; it is marked changed (written at the next commit)."""
        states = self._partitions[partition]
        state = states.get(key)
        if state is None:
            state = states[key] = self._codec.new()
        elif type(state) is bytes:
            state = states[key] = self._codec.unpack(state)
        self._dirty[partition].add(key)
        return state  # type: ignore[return-value]

    def saw(self, partition: int, event_time: int) -> None:
        if event_time > self.stream_time.get(partition, event_time - 1):
            self.stream_time[partition] = event_time

    def load(self, partition: int, records: Mapping[str, bytes]) -> None:
        """Replace a partition's state with what its changelog holds."""
        self._partitions[partition] = dict(records)
        self._dirty[partition] = set()
        self.stream_time.pop(partition, None)
        self._keys.set(len(self))

    def drop(self, partitions: Iterable[int]) -> None:
        for p in list(partitions):
            self._partitions.pop(p, None)
            self._dirty.pop(p, None)
            self.stream_time.pop(p, None)
        self._keys.set(len(self))

    def take_changes(self) -> list[Change]:
        """Packed states of the keys changed since the last call."""
        changes: list[Change] = []
        for partition, dirty in self._dirty.items():
            states = self._partitions[partition]
            changes += [
                (partition, key.encode(), self._codec.pack(states[key]))  # type: ignore[arg-type]
                for key in dirty
            ]
            dirty.clear()
        return changes

    def evict(self, now_ms: int) -> list[Change]:
        """Forget keys idle for evict_after_ms of their partition's bounded stream time; their deletions.

        A full scan, so callers run it now and then, not per batch.
        """
        changes: list[Change] = []
        for partition, newest in self.stream_time.items():
            horizon = min(newest, now_ms + self.max_skew_ms) - self.evict_after_ms
            states = self._partitions[partition]
            idle = [key for key, state in states.items() if self._idle(state, horizon)]
            for key in idle:
                del states[key]
                self._dirty[partition].discard(key)
            changes += [(partition, key.encode(), None) for key in idle]
        self._keys.set(len(self))
        return changes

    def _idle(self, state: S | bytes, horizon: int) -> bool:
        newest = self._codec.newest(state)
        return newest is not None and newest < horizon
