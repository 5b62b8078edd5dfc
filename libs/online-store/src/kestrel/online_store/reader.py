"""Reads feature vectors for inference: one or many entities in one round trip, in definition order, with age."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from redis.exceptions import RedisError

from kestrel.common.errors import UnavailableError
from kestrel.online_store.layout import (
    DEFAULT_PREFIX,
    EMPTY_LOG,
    READ_FIELDS,
    FeatureLayout,
    LogColumns,
    LoggedEvent,
    key_prefix,
    to_definition_order,
    unpack_log,
)
from kestrel.online_store.scripts import READ_MANY, LuaScript, command_groups, is_cluster

log = structlog.get_logger()

_READ = LuaScript(READ_MANY)
_NEVER = np.iinfo(np.int64).max
Reply = Sequence[Any]
"""[_ts, _v, x, _e] of one key as Redis answers HMGET: bytes, or None where absent (then _s and the log)."""


@dataclass(frozen=True, slots=True)
class EventLog:
    """An entity's event log: the events its stored vectors came from, oldest first (ties in member order)."""

    complete_from: int
    """The log holds every event after this time (0: all of them; int64 max: none to trust, e.g. a newer
    vector came without its event, or a member could not be read). Windows starting before it are not exact."""
    columns: LogColumns = EMPTY_LOG
    """The events, column by column (numeric and categorical sources sorted by name)."""

    @classmethod
    def of(cls, complete_from: int, events: Iterable[LoggedEvent]) -> EventLog:
        """A log of these events (oldest first), e.g. for tests."""
        rows = list(events)
        if not rows:
            return cls(complete_from)
        n, c = len(rows[0].numbers), len(rows[0].categories)
        return cls(
            complete_from,
            LogColumns(
                [e.event_time_ms for e in rows],
                [e.event_id for e in rows],
                [[e.numbers[j] for e in rows] for j in range(n)],
                [[e.categories[j] for e in rows] for j in range(c)],
            ),
        )

    @property
    def events(self) -> tuple[LoggedEvent, ...]:
        """The events one by one (the columns are what the request path reads)."""
        t, ids, nums, cats = self.columns
        return tuple(
            LoggedEvent(t[i], ids[i], tuple(col[i] for col in nums), tuple(col[i] for col in cats))
            for i in range(len(t))
        )

    def complete_after(self, start_ms: int) -> bool:
        """Whether the log holds every event of the entity after start_ms."""
        return self.complete_from <= start_ms


NO_LOG = EventLog(0)
"""The log of an entity the store does not know: complete, and empty."""


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
    log: EventLog | None = None
    """The entity's event log (when asked)."""


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
    logs: Sequence[EventLog] | None = None
    """The entities' event logs, rows as above (when asked; NO_LOG where not found)."""

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
            self.logs[i] if self.logs is not None else None,
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
        self.bad_logs = 0
        """Event logs found but unreadable (a member of another layout): served as not to be trusted."""

    def key(self, entity_id: str) -> str:
        return self._key + entity_id + "}"

    async def get(self, entity_id: str, *, with_log: bool = False) -> OnlineVector:
        """One entity: a plain HMGET (one round trip plus redis-py's overhead), or with its event log one script
        call. UnavailableError if Redis fails."""
        if with_log:
            return (await self.get_many([entity_id], with_log=True))[0]
        try:
            reply = await self._client.execute_command("HMGET", self.key(entity_id), *READ_FIELDS)
        except RedisError as exc:
            raise UnavailableError(f"online store read failed: {type(exc).__name__}: {exc}") from exc
        return self._vector(entity_id, reply, time.time_ns() // 1_000_000)

    async def get_many(self, entity_ids: Sequence[str], *, with_log: bool = False) -> OnlineBatch:
        """Many entities in one round trip: one script call per chunk of keys (per hash slot on a cluster),
        with each entity's event log when asked (`logs`)."""
        keys = [self._key + entity_id + "}" for entity_id in entity_ids]
        try:
            replies = await self._read(keys, with_log)
        except RedisError as exc:
            raise UnavailableError(f"online store read failed: {type(exc).__name__}: {exc}") from exc
        return self._batch(entity_ids, replies, time.time_ns() // 1_000_000, with_log)

    def defaults_for(self, entity_ids: Sequence[str]) -> OnlineBatch:
        """What get_many answers when none of the entities is found (callers use it when Redis is down)."""
        return self._batch(entity_ids, [(None, None, None, None)] * len(entity_ids), time.time_ns() // 1_000_000)

    async def _read(self, keys: list[str], with_log: bool) -> list[Reply]:
        if len(keys) <= 1 and not with_log:  # a script call costs more than a plain HMGET for one key
            return [await self._client.execute_command("HMGET", key, *READ_FIELDS) for key in keys]
        groups = command_groups(keys, self._chunk, self._cluster)
        flag = 1 if with_log else 0
        results = await _READ.run(self._client, [([keys[i] for i in group], [flag]) for group in groups])
        replies: list[Reply] = [()] * len(keys)
        for group, result in zip(groups, results):
            for i, reply in zip(group, result):
                replies[i] = reply
        return replies

    def _logs(self, replies: Sequence[Reply], found: np.ndarray) -> list[EventLog]:
        """The event log behind the vector fields of each reply (NO_LOG where the entity was not found)."""
        return [self._log(replies[i]) if found[i] else NO_LOG for i in range(len(replies))]

    def _log(self, reply: Reply) -> EventLog:
        if reply[4] is None:  # the vector was stored without its event: no log to trust
            return EventLog(_NEVER)
        try:
            columns = unpack_log(reply[5])
        except (ValueError, struct.error, UnicodeDecodeError):
            self.bad_logs += 1
            log.warning("online_store_invalid_event_log", version=self.version)
            return EventLog(_NEVER)
        return EventLog(int(reply[4]), columns)

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
        self, entity_ids: Sequence[str], replies: Sequence[Reply], now_ms: int, with_log: bool = False
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
        logs = self._logs(replies, found) if with_log else None
        return OnlineBatch(entity_ids, values, found, event_time, event_ids, age, stale, self.version, logs)

    def _stale(self, age_ms: int) -> bool:
        return self.max_age_ms is not None and age_ms > self.max_age_ms


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None
