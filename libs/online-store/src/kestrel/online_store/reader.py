"""Reads feature vectors for inference: one or many entities in one round trip, in definition order, with age."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from redis.exceptions import RedisError

from kestrel.common.errors import UnavailableError
from kestrel.online_store.layout import (
    DEFAULT_PREFIX,
    READ_FIELDS,
    FeatureLayout,
    SetQuery,
    key_prefix,
    to_definition_order,
)
from kestrel.online_store.scripts import READ_MANY, LuaScript, command_groups, is_cluster

log = structlog.get_logger()

_READ = LuaScript(READ_MANY)
_NEVER = np.iinfo(np.int64).max
Reply = Sequence[Any]
"""[_ts, _v, x, _e] of one key as Redis answers HMGET: bytes, or None where absent (then the set answers)."""


@dataclass(frozen=True, slots=True)
class SetAnswer:
    """Per entity (rows) and categorical source (columns, in the store's `sets` order): the answers the
    request-time set features need. -1 stands for none."""

    last_seen: np.ndarray
    """int64 (n, S): newest event time the request's value of the source was seen at."""
    counts: np.ndarray
    """int64 (n, P): values last seen after t - w, for each (source, window) pair in `pairs` order."""
    dropped: np.ndarray
    """int64 (n, S): newest last-seen time of a value the cap dropped from the set."""
    complete_from: np.ndarray
    """int64 (n,): the sets hold every event after this time (0: all; int64 max: not to be trusted, e.g. a
    newer vector came without categories). A window starting before it falls back to the vector's rule."""

    def row(self, i: int) -> SetAnswer:
        one = slice(i, i + 1)
        return SetAnswer(self.last_seen[one], self.counts[one], self.dropped[one], self.complete_from[one])


@dataclass(frozen=True, slots=True)
class OnlineVector:
    """One entity's features; `values` are the defaults when the entity was not found."""

    entity_id: str
    values: np.ndarray
    """float64, in feature-set definition order."""
    found: bool
    event_time_ms: int | None
    """Event time of the event that produced the vector."""
    event_id: str | None
    """Id of that event (so a caller can tell whether the vector already includes an event)."""
    age_ms: int | None
    """How old the vector is (now minus its event time); None when not found."""
    version: str
    stale: bool
    """Older than the store's max_age_ms."""
    sets: SetAnswer | None = None
    """What the entity's categorical sets say about the request's values (when asked)."""


@dataclass(frozen=True, slots=True)
class OnlineBatch:
    """Several entities' features as arrays, row i for entity_ids[i]: a matrix ready for the model."""

    entity_ids: Sequence[str]
    values: np.ndarray
    """float64, shape (entities, features), columns in definition order; defaults where not found."""
    found: np.ndarray
    event_time_ms: np.ndarray
    """int64; 0 where not found."""
    event_ids: Sequence[str | None]
    """Id of the event behind each vector; None where not found."""
    age_ms: np.ndarray
    """int64; -1 where not found."""
    stale: np.ndarray
    version: str
    sets: SetAnswer | None = None
    """What the entities' categorical sets say about the request values, rows as above (when asked)."""

    def __len__(self) -> int:
        return len(self.entity_ids)

    def __getitem__(self, i: int) -> OnlineVector:
        found = bool(self.found[i])
        return OnlineVector(
            self.entity_ids[i],
            self.values[i],
            found,
            int(self.event_time_ms[i]) if found else None,
            self.event_ids[i],
            int(self.age_ms[i]) if found else None,
            self.version,
            bool(self.stale[i]),
            self.sets.row(i) if self.sets is not None else None,
        )

    def __iter__(self) -> Iterator[OnlineVector]:
        return (self[i] for i in range(len(self)))


class OnlineStore:
    """The online store's read side for one feature set (and version). Needs a client with
    decode_responses=False (values are packed bytes); `redis_client()` makes one."""

    def __init__(
        self,
        client: Any,
        feature_set: FeatureLayout,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_age_ms: int | None = None,
        chunk: int = 128,
        sets: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self._client = client
        self.version = feature_set.version_id
        self.names = list(feature_set.names)
        self.defaults = np.asarray(feature_set.defaults, dtype=np.float64)
        self.max_age_ms = max_age_ms
        self.invalid = 0
        """Entries found but unusable (wrong version or length): served as not found, counted here."""
        self._key = key_prefix(prefix, self.version)
        self._version = self.version.encode()
        self._width = 8 * len(self.names)
        self._perm = np.asarray(to_definition_order(self.names), dtype=np.intp)
        self._chunk = chunk
        self._cluster = is_cluster(client)
        self.sets = {source: tuple(windows) for source, windows in (sets or {}).items()}
        """Categorical source -> windows (ms) the set answers count values for (FeatureSet.set_windows_ms)."""
        self.pairs = [(source, w) for source, windows in self.sets.items() for w in windows]
        self._set_args: list[Any] = [len(self.sets)]
        for source, windows in self.sets.items():
            self._set_args += (source, len(windows), *windows)

    def key(self, entity_id: str) -> str:
        return self._key + entity_id + "}"

    async def get(self, entity_id: str, query: SetQuery | None = None) -> OnlineVector:
        """One entity: a plain HMGET (one round trip plus redis-py's overhead), or with a query one script call
        that answers it from the entity's sets too. UnavailableError if Redis fails."""
        if query is not None and self.sets:
            return (await self.get_many([entity_id], [query]))[0]
        try:
            reply = await self._client.execute_command("HMGET", self.key(entity_id), *READ_FIELDS)
        except RedisError as exc:
            raise UnavailableError(f"online store read failed: {type(exc).__name__}: {exc}") from exc
        return self._vector(entity_id, reply, time.time_ns() // 1_000_000)

    async def get_many(self, entity_ids: Sequence[str], queries: Sequence[SetQuery] | None = None) -> OnlineBatch:
        """Many entities in one round trip: one script call per chunk of keys (per hash slot on a cluster).
        With queries (one per entity, when the store has `sets`), the same calls answer them: `sets`."""
        keys = [self._key + entity_id + "}" for entity_id in entity_ids]
        asked = queries if queries is not None and self.sets else None
        try:
            replies = await self._read(keys, asked)
        except RedisError as exc:
            raise UnavailableError(f"online store read failed: {type(exc).__name__}: {exc}") from exc
        return self._batch(entity_ids, replies, time.time_ns() // 1_000_000, asked is not None)

    def defaults_for(self, entity_ids: Sequence[str]) -> OnlineBatch:
        """What get_many answers when none of the entities is found (callers use it when Redis is down)."""
        return self._batch(entity_ids, [(None, None, None, None)] * len(entity_ids), time.time_ns() // 1_000_000)

    async def _read(self, keys: list[str], queries: Sequence[SetQuery] | None) -> list[Reply]:
        if len(keys) <= 1 and queries is None:  # a script call costs more than a plain HMGET for one key
            return [await self._client.execute_command("HMGET", key, *READ_FIELDS) for key in keys]
        groups = command_groups(keys, self._chunk, self._cluster)
        results = await _READ.run(self._client, [self._call(keys, group, queries) for group in groups])
        replies: list[Reply] = [()] * len(keys)
        for group, result in zip(groups, results):
            for i, reply in zip(group, result):
                replies[i] = reply
        return replies

    def _call(
        self, keys: list[str], group: list[int], queries: Sequence[SetQuery] | None
    ) -> tuple[list[str], list[Any]]:
        if queries is None:
            return [keys[i] for i in group], [0]
        args = self._set_args.copy()
        for i in group:
            args += (queries[i].event_time_ms, *queries[i].values)
        return [keys[i] for i in group], args

    def _sets(self, replies: Sequence[Reply], found: np.ndarray) -> SetAnswer:
        """The set answers behind the vector fields of each reply (-1 and 0 where the entity was not found)."""
        n, width = len(replies), len(self.sets)
        last_seen, dropped = np.full((n, width), -1, dtype=np.int64), np.full((n, width), -1, dtype=np.int64)
        counts = np.zeros((n, len(self.pairs)), dtype=np.int64)
        complete = np.zeros(n, dtype=np.int64)
        for i in np.flatnonzero(found).tolist():
            reply, pos, p = replies[i], 5 + width, 0
            complete[i] = _time(reply[4]) if reply[4] is not None else _NEVER
            for s, windows in enumerate(self.sets.values()):
                dropped[i, s] = _time(reply[5 + s])
                last_seen[i, s] = _time(reply[pos])
                counts[i, p : p + len(windows)] = reply[pos + 1 : pos + 1 + len(windows)]
                pos, p = pos + 1 + len(windows), p + len(windows)
        return SetAnswer(last_seen, counts, dropped, complete)

    def _usable(self, entity_id: str, reply: Reply) -> bool:
        ts, version, values = reply[0], reply[1], reply[2]
        if ts is not None and values is not None and version == self._version and len(values) == self._width:
            return True
        if ts is not None or values is not None:  # present but not in this version's layout
            self.invalid += 1
            log.warning("online_store_invalid_entry", entity_id=entity_id, version=self.version)
        return False

    def _vector(self, entity_id: str, reply: Reply, now_ms: int) -> OnlineVector:
        if not self._usable(entity_id, reply):
            return OnlineVector(entity_id, self.defaults.copy(), False, None, None, None, self.version, False)
        event_time = int(reply[0])
        age = now_ms - event_time
        values = np.frombuffer(reply[2], dtype="<f8")[self._perm]  # fancy indexing copies: a writable array
        return OnlineVector(entity_id, values, True, event_time, _text(reply[3]), age, self.version, self._stale(age))

    def _batch(
        self, entity_ids: Sequence[str], replies: Sequence[Reply], now_ms: int, asked: bool = False
    ) -> OnlineBatch:
        n = len(replies)
        values = np.empty((n, len(self.names)), dtype=np.float64)
        values[:] = self.defaults
        event_time = np.zeros(n, dtype=np.int64)
        event_ids: list[str | None] = [None] * n
        rows, blobs = [], []
        for i, reply in enumerate(replies):
            if self._usable(entity_ids[i], reply):
                rows.append(i)
                blobs.append(reply[2])
                event_time[i] = int(reply[0])
                event_ids[i] = _text(reply[3])
        found = np.zeros(n, dtype=bool)
        if rows:
            stored = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(rows), len(self.names))
            values[rows] = stored[:, self._perm]
            found[rows] = True
        age = np.where(found, now_ms - event_time, -1)
        stale = found & (age > self.max_age_ms) if self.max_age_ms is not None else np.zeros(n, dtype=bool)
        sets = self._sets(replies, found) if asked else None
        return OnlineBatch(entity_ids, values, found, event_time, event_ids, age, stale, self.version, sets)

    def _stale(self, age_ms: int) -> bool:
        return self.max_age_ms is not None and age_ms > self.max_age_ms


def _time(value: bytes | None) -> int:
    """A score (event time in ms) as Redis formats it, or -1 for none."""
    return int(float(value)) if value is not None else -1


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None
