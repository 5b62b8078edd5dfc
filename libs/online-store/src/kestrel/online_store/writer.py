"""Writes feature vectors to the online store: newest event time wins, inside Redis, in one round trip."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from kestrel.common.errors import UnavailableError
from kestrel.online_store.layout import DEFAULT_PREFIX, entity_key, pack_features
from kestrel.online_store.scripts import WRITE_NEWEST, LuaScript, command_groups, is_cluster

_WRITE = LuaScript(WRITE_NEWEST)


@dataclass(frozen=True, slots=True)
class VectorWrite:
    """One vector, ready for Redis: its key, ordering fields and packed values."""

    key: str
    event_time_ms: int
    event_id: str
    version: str
    values: bytes
    categories: tuple[tuple[str, str], ...] = ()
    """The event's (source, value) pairs whose last-seen times the store keeps next to the vector."""
    window_ms: int = 0
    """How long those last-seen times are kept (behind the entity's newest event time)."""

    @classmethod
    def from_record(cls, record: Mapping[str, Any], prefix: str = DEFAULT_PREFIX) -> VectorWrite:
        """From a decoded kestrel.v1.FeatureVector (event_time as int milliseconds)."""
        version = record["feature_set_version"]
        _, values = pack_features(record["features"])
        key = entity_key(prefix, version, record["entity_id"])
        categories = tuple(sorted((record.get("categories") or {}).items()))
        window = record.get("category_window_ms") or 0
        return cls(key, record["event_time"], record["event_id"], version, values, categories, window)

    def newer_than(self, other: VectorWrite) -> bool:
        # Same rule as the script: event time, then event id in byte order (Python's str order is that).
        return (self.event_time_ms, self.event_id) > (other.event_time_ms, other.event_id)


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: int
    """Vectors stored."""
    older: int
    """Vectors Redis kept out because it already held a newer (or the same) one."""
    superseded: int
    """Vectors dropped before sending because the same batch had a newer one for the key."""


Seen = dict[tuple[str, str], int]
"""(source, value) -> newest event time it was seen at, for one key."""


def seen_per_key(writes: Iterable[VectorWrite]) -> dict[str, tuple[Seen, int]]:
    """Each key's categorical values with their newest time in the batch, and the longest window: older
    vectors are superseded, but their values were still seen (and the store's max makes order irrelevant)."""
    out: dict[str, tuple[Seen, int]] = {}
    for write in writes:
        if not write.categories:
            continue
        seen, window = out.get(write.key, ({}, 0))
        for pair in write.categories:
            if seen.get(pair, write.event_time_ms - 1) < write.event_time_ms:
                seen[pair] = write.event_time_ms
        out[write.key] = (seen, max(window, write.window_ms))
    return out


def newest_per_key(writes: Iterable[VectorWrite]) -> list[VectorWrite]:
    """The newest vector of each key: fewer commands, and the same final state as sending them all."""
    newest: dict[str, VectorWrite] = {}
    for write in writes:
        current = newest.get(write.key)
        if current is None or write.newer_than(current):
            newest[write.key] = write
    return list(newest.values())


class OnlineStoreWriter:
    """Compare-and-set writes of whole batches; idempotent, so a failed batch is simply sent again."""

    def __init__(self, client: Any, *, ttl_s: float, chunk: int = 16, set_cap: int = 256) -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._chunk = chunk
        """Keys per script call: a script blocks Redis while it runs (~10 us per key), so readers wait."""
        self._cap = set_cap
        """Values kept per entity and categorical source; past it the least recently seen are dropped (marked)."""
        self._cluster = is_cluster(client)

    async def write(self, writes: Sequence[VectorWrite]) -> WriteResult:
        """Store each key's newest vector unless Redis holds a newer one, and every vector's categorical values
        with their last-seen times; UnavailableError when Redis fails."""
        newest = newest_per_key(writes)
        if not newest:
            return WriteResult(0, 0, len(writes))
        try:
            written = sum(await _WRITE.run(self._client, self._calls(newest, seen_per_key(writes))))
        except RedisError as exc:
            raise UnavailableError(f"redis write failed: {type(exc).__name__}: {exc}") from exc
        return WriteResult(written, len(newest) - written, len(writes) - len(newest))

    def _calls(self, writes: list[VectorWrite], seen: dict[str, tuple[Seen, int]]) -> list[tuple[list[str], list[Any]]]:
        now_ms = int(time.time() * 1000)
        calls = []
        for group in command_groups([w.key for w in writes], self._chunk, self._cluster):
            keys: list[str] = []
            args: list[Any] = [self._ttl_ms, now_ms, self._cap]
            for i in group:
                w = writes[i]
                values, window = seen.get(w.key, ({}, 0))
                keys.append(w.key)
                args += (w.event_time_ms, w.event_id, w.version, w.values, window, len(values))
                for (source, value), t in values.items():
                    args += (source, value, t)
            calls.append((keys, args))
        return calls
