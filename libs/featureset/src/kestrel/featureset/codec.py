"""Compact bytes for an entity's state (the changelog value): arrays for numbers, joined text for strings."""

from __future__ import annotations

import json
import struct
import sys
from array import array
from itertools import chain

from kestrel.featureset.state import EntityState

FORMAT = 2
"""2 added the event id hashes after the times; 1 (without them) still restores, its ids unknown (0)."""
_FORMATS = (1, 2)
_HEADER = struct.Struct("<BqqIHH")
"""format, watermark (or -2**63 for none), last offset, events, numeric columns, categorical columns."""
_NONE = -(2**63)
_SEP = "\x1f"
"""Unit separator between strings: a join and a split cost a fifth of JSON; JSON only when a value holds one."""
_JOINED, _JSON = b"\x00", b"\x01"
_SWAP = sys.byteorder != "little"
"""Arrays are written little-endian whatever the machine, so any worker can recover any changelog."""


class StateDecodeError(ValueError):
    """Changelog bytes that are not a state of this layout (another format or feature set)."""


def pack_state(state: EntityState) -> bytes:
    """Encode a state; 16 bytes per event (time, id hash), 8 per event and number column, plus the strings."""
    wm = _NONE if state.watermark is None else state.watermark
    header = _HEADER.pack(FORMAT, wm, state.offset, len(state.times), len(state.numeric), len(state.categorical))
    parts = [header, _bytes(array("q", state.times)), _bytes(array("q", state.ids))]
    parts += [_bytes(array("d", column)) for column in state.numeric]
    parts += _strings(state.categorical, len(state.times))
    return b"".join(parts)


def _strings(columns: list[list[str]], n: int) -> list[bytes]:
    joined = _SEP.join(chain.from_iterable(columns))
    if joined.count(_SEP) == len(columns) * n - 1 or not n * len(columns):
        return [_JOINED, joined.encode()]
    return [_JSON, json.dumps(columns, separators=(",", ":"), ensure_ascii=False).encode()]


def _columns(data: bytes, n: int, n_columns: int) -> list[list[str]]:
    kind, body = data[:1], data[1:]
    try:
        if kind == _JSON:
            return json.loads(body)
        if kind != _JOINED:
            raise StateDecodeError(f"unknown string encoding {kind!r}")
        values = body.decode().split(_SEP) if n * n_columns else []
    except ValueError as exc:
        raise StateDecodeError(f"bad categorical columns: {exc}") from exc
    return [values[i * n : (i + 1) * n] for i in range(n_columns)]


def packed_watermark(data: bytes) -> int | None:
    """The newest event time of a packed state, read from its header alone."""
    if len(data) < _HEADER.size:
        raise StateDecodeError(f"state of {len(data)} bytes is shorter than its header")
    wm = _HEADER.unpack_from(data)[1]
    return None if wm == _NONE else wm


def unpack_state(data: bytes, n_numeric: int, n_categorical: int) -> EntityState:
    """Decode what pack_state wrote; StateDecodeError when the layout does not match."""
    if len(data) < _HEADER.size:
        raise StateDecodeError(f"state of {len(data)} bytes is shorter than its header")
    fmt, wm, offset, n, numeric, categorical = _HEADER.unpack_from(data)
    if fmt not in _FORMATS or (numeric, categorical) != (n_numeric, n_categorical):
        raise StateDecodeError(
            f"state layout {(fmt, numeric, categorical)} is not the expected {(FORMAT, n_numeric, n_categorical)}"
        )
    with_ids = fmt >= 2
    if len(data) < _HEADER.size + 8 * n * (1 + with_ids + n_numeric):
        raise StateDecodeError(f"state of {len(data)} bytes is too short for {n} events")
    state = EntityState(n_numeric, n_categorical)
    state.watermark = None if wm == _NONE else wm
    state.offset = offset
    pos = _HEADER.size
    state.times = _list("q", data[pos : pos + 8 * n])
    pos += 8 * n
    state.ids = _list("q", data[pos : pos + 8 * n]) if with_ids else [0] * n
    pos += 8 * n * with_ids
    for i in range(n_numeric):
        state.numeric[i] = _list("d", data[pos : pos + 8 * n])
        pos += 8 * n
    state.categorical = _columns(data[pos:], n, n_categorical)
    if len(state.categorical) != n_categorical or any(len(c) != n for c in state.categorical):
        raise StateDecodeError("categorical columns do not match the event count")
    return state


def _bytes(values: array) -> bytes:
    if _SWAP:
        values.byteswap()
    return values.tobytes()


def _list(typecode: str, data: bytes) -> list:
    values = array(typecode)
    values.frombytes(data)
    if _SWAP:
        values.byteswap()
    return values.tolist()
