"""Online store layout: key names, hash fields and the packed value encoding, shared by writer and reader."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

DEFAULT_PREFIX = "kestrel:fs"

TS, EVENT_ID, VERSION, VALUES, WRITTEN = "_ts", "_e", "_v", "x", "_w"
"""Hash fields: event time (ms), event id (tie-break), feature-set version, packed values, written-at (ms)."""
READ_FIELDS = (TS, VERSION, VALUES, EVENT_ID)


class FeatureLayout(Protocol):
    """What the store needs of a feature set (kestrel.featureset.FeatureSet fits)."""

    @property
    def version_id(self) -> str: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def defaults(self) -> list[float]: ...


class LoggedEvent(NamedTuple):
    """One event of an entity's event log, as the reader gives it back."""

    event_time_ms: int
    event_id: str
    numbers: tuple[float, ...]
    """The event's numeric values, sources sorted by name."""
    categories: tuple[str, ...]
    """Its categorical values, sources sorted by name."""


_HEAD = struct.Struct("<HBB")
_LENGTH = struct.Struct("<H")


def pack_event(event_id: str, numbers: Mapping[str, float], categories: Mapping[str, str]) -> bytes:
    """An event log member: (id length, number count, category count), the id, the numbers as float64s and
    the categories length-prefixed, both sorted by source name. Its time is the member's score. Source names
    are not stored: the key's feature-set version fixes them (readers check the counts)."""
    ident = event_id.encode()
    out = [_HEAD.pack(len(ident), len(numbers), len(categories)), ident, _packer(len(numbers)).pack(*_by_name(numbers))]
    for value in _by_name(categories):
        data = value.encode()
        out += (_LENGTH.pack(len(data)), data)
    return b"".join(out)


def unpack_event(member: bytes, event_time_ms: int) -> LoggedEvent:
    """The event behind a log member (ValueError/struct.error if it is not one)."""
    size, n, c = _HEAD.unpack_from(member)
    pos = _HEAD.size + size
    ident = member[_HEAD.size : pos].decode()
    numbers = _packer(n).unpack_from(member, pos)
    pos += 8 * n
    categories = []
    for _ in range(c):
        (length,) = _LENGTH.unpack_from(member, pos)
        categories.append(member[pos + 2 : pos + 2 + length].decode())
        pos += 2 + length
    if pos != len(member):
        raise ValueError("event log member has trailing bytes")
    return LoggedEvent(event_time_ms, ident, numbers, tuple(categories))


class LogColumns(NamedTuple):
    """An event log decoded column by column (one list per numeric and per categorical source), oldest first:
    what request-time features read, without building a tuple per event."""

    times: list[int]
    ids: list[str]
    numbers: list[list[float]]
    categories: list[list[str]]


EMPTY_LOG = LogColumns([], [], [], [])


def unpack_log(flat: Sequence[bytes]) -> LogColumns:
    """A log as Redis returns ZRANGE ... WITHSCORES (member, score, member, score, ...) into columns; every
    member must have the first one's counts (ValueError/struct.error if not, or if one is not a member)."""
    if not flat:
        return EMPTY_LOG
    head, length = _HEAD.unpack_from, _LENGTH.unpack_from
    _, n, c = head(flat[0])
    numbers = _packer(n).unpack_from
    times, ids = [], []
    nums: list[list[float]] = [[] for _ in range(n)]
    cats: list[list[str]] = [[] for _ in range(c)]
    for k in range(0, len(flat), 2):
        member = flat[k]
        size, n_k, c_k = head(member)
        if n_k != n or c_k != c:
            raise ValueError("event log members of different layouts")
        pos = _HEAD.size + size
        ids.append(member[_HEAD.size : pos].decode())
        for values, x in zip(nums, numbers(member, pos)):
            values.append(x)
        pos += 8 * n
        for labels in cats:
            (size,) = length(member, pos)
            labels.append(member[pos + 2 : pos + 2 + size].decode())
            pos += 2 + size
        if pos != len(member):
            raise ValueError("event log member has trailing bytes")
        times.append(int(float(flat[k + 1])))
    return LogColumns(times, ids, nums, cats)


def _by_name(values: Mapping[str, Any]) -> list[Any]:
    return [values[name] for name in sorted(values)]


@lru_cache(maxsize=256)
def key_prefix(prefix: str, version: str) -> str:
    """Everything of an entity's key before the entity id: `<prefix>:<version>:{`."""
    if "{" in prefix or "}" in prefix or "{" in version or "}" in version:
        raise ValueError(f"key prefix {prefix!r} and version {version!r} may not contain braces (hash tags)")
    return f"{prefix}:{version}:{{"


def entity_key(prefix: str, version: str, entity_id: str) -> str:
    """`kestrel:fs:card.v1:{card-42}`: the braces make the entity the Redis Cluster hash tag.

    The version (which names the feature set too, `card.v1`) is part of the key, so a new feature-set
    version never overwrites vectors laid out for the old one while both are served.
    """
    return f"{key_prefix(prefix, version)}{entity_id}}}"


def storage_order(names: Sequence[str]) -> list[str]:
    """Values are stored sorted by feature name: the writer needs no definitions to store any version."""
    return sorted(names)


def to_definition_order(names: Sequence[str]) -> list[int]:
    """Index into stored values that yields definition order: `stored[perm]`."""
    position = {name: i for i, name in enumerate(storage_order(names))}
    return [position[name] for name in names]


@lru_cache(maxsize=64)
def _packer(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}d")


def pack_features(features: Mapping[str, float]) -> tuple[list[str], bytes]:
    """The record's feature names in storage order, and their values as little-endian float64s."""
    names = sorted(features)
    return names, _packer(len(names)).pack(*[features[n] for n in names])
