"""Writes feature vectors to the online store: newest event time wins, inside Redis, in one round trip."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from kestrel.common.errors import UnavailableError
from kestrel.online_store.layout import DEFAULT_PREFIX, entity_key, pack_event, pack_features
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
    event: bytes = b""
    """The event as the entity's event log keeps it (`pack_event`); empty when the record did not carry it."""
    retention_ms: int = 0
    """How far behind the entity's newest event time its log keeps events."""
    cap: int = 0
    """At most this many events in the log (the newest kept)."""

    @classmethod
    def from_record(cls, record: Mapping[str, Any], prefix: str = DEFAULT_PREFIX) -> VectorWrite:
        """From a decoded kestrel.v1.FeatureVector (event_time as int milliseconds)."""
        version = record["feature_set_version"]
        _, values = pack_features(record["features"])
        key = entity_key(prefix, version, record["entity_id"])
        retention, cap = record.get("log_retention_ms") or 0, record.get("log_cap") or 0
        event = b""
        if retention > 0 and cap > 0:
            event = pack_event(record["event_id"], record.get("numbers") or {}, record.get("categories") or {})
        return cls(key, record["event_time"], record["event_id"], version, values, event, retention, cap)

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


Logged = tuple[list[tuple[int, bytes]], int, int]
"""One key's (event time, member) pairs of a batch, with the longest retention and largest cap asked."""


def logged_per_key(writes: Iterable[VectorWrite]) -> dict[str, Logged]:
    """Every event of the batch for each key's log: older vectors are superseded, their events are not."""
    out: dict[str, Logged] = {}
    for write in writes:
        if not write.event:
            continue
        events, retention, cap = out.get(write.key, ([], 0, 0))
        events.append((write.event_time_ms, write.event))
        out[write.key] = (events, max(retention, write.retention_ms), max(cap, write.cap))
    return out


def newest_per_key(writes: Iterable[VectorWrite]) -> list[VectorWrite]:
    """The newest vector of each key: fewer commands, and the same final state as sending them all."""
    newest: dict[str, VectorWrite] = {}
    for write in writes:
        current = newest.get(write.key)
        if current is None or write.newer_than(current):
            newest[write.key] = write
    return list(newest.values())


def replicas_short(acknowledged: int, wanted: int, timeout_ms: int) -> str | None:
    """Why a batch WAIT acknowledged on too few replicas must not count as written; None when enough did."""
    if acknowledged >= wanted:
        return None
    return (
        f"redis WAIT: {acknowledged} of {wanted} replicas acknowledged the batch within {timeout_ms} ms; "
        f"it stays uncommitted and is sent again (check the replicas: INFO replication)"
    )


class OnlineStoreWriter:
    """Compare-and-set writes of whole batches; idempotent, so a failed batch is simply sent again.

    With `wait_replicas` > 0 each batch ends with WAIT on the same connection: the batch counts as written only
    once that many replicas hold it (else UnavailableError), so a primary lost with its unreplicated writes
    cannot lose a batch whose offsets were committed. Standalone Redis only (WAIT is per shard in a cluster).
    """

    def __init__(
        self, client: Any, *, ttl_s: float, chunk: int = 16, wait_replicas: int = 0, wait_timeout_ms: int = 500
    ) -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._chunk = chunk
        """Keys per script call: a script blocks Redis while it runs (~10 us per key), so readers wait."""
        self._cluster = is_cluster(client)
        if wait_replicas and self._cluster:
            raise ValueError("WAIT after each batch needs a standalone Redis (with replicas), not Redis Cluster")
        self._wait = (wait_replicas, wait_timeout_ms)

    async def write(self, writes: Sequence[VectorWrite]) -> WriteResult:
        """Store each key's newest vector unless Redis holds a newer one, and every vector's event in its key's
        event log; UnavailableError when Redis fails or too few replicas acknowledged the batch in time."""
        newest = newest_per_key(writes)
        if not newest:
            return WriteResult(0, 0, len(writes))
        wanted, timeout_ms = self._wait
        then = ("WAIT", wanted, timeout_ms) if wanted else ()
        try:
            replies = await _WRITE.run(self._client, self._calls(newest, logged_per_key(writes)), then)
        except RedisError as exc:
            raise UnavailableError(f"redis write failed: {type(exc).__name__}: {exc}") from exc
        if wanted and (short := replicas_short(replies.pop(), wanted, timeout_ms)):
            raise UnavailableError(short)
        written = sum(replies)
        return WriteResult(written, len(newest) - written, len(writes) - len(newest))

    def _calls(self, writes: list[VectorWrite], logged: dict[str, Logged]) -> list[tuple[list[str], list[Any]]]:
        now_ms = int(time.time() * 1000)
        calls = []
        for group in command_groups([w.key for w in writes], self._chunk, self._cluster):
            keys: list[str] = []
            args: list[Any] = [self._ttl_ms, now_ms]
            for i in group:
                w = writes[i]
                events, retention, cap = logged.get(w.key, ([], 0, 0))
                keys.append(w.key)
                args += (w.event_time_ms, w.event_id, w.version, w.values, retention, cap, len(events))
                for pair in events:
                    args += pair
            calls.append((keys, args))
        return calls
