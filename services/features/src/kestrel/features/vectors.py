"""FeatureVector records (schemas/feature_vector.avsc) encoded without fastavro's per-field dispatch.

fastavro took 44 us per 28-feature vector here, most of it walking the map; the layout is fixed by
the feature set, so the whole map is one precompiled struct of (key bytes, double) pairs. The bytes
are identical to fastavro's (checked by a test).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from kestrel.common.avro import AvroSerde
from kestrel.common.errors import SerializationError


def zigzag(n: int) -> bytes:
    """Avro long: zigzag, then base-128 varint, low groups first."""
    n = (n << 1) ^ (n >> 63)
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def avro_string(text: str) -> bytes:
    data = text.encode()
    return zigzag(len(data)) + data


class VectorEncoder:
    """Encodes (entity, event, time, vector) as a framed FeatureVector for one feature set's names."""

    def __init__(self, serde: AvroSerde, names: Sequence[str], version: str) -> None:
        if serde.schema.get("name") != "kestrel.v1.FeatureVector":
            raise ValueError(f"VectorEncoder needs the FeatureVector serde, got {serde.schema.get('name')}")
        self._serde = serde
        self._frame: bytes | None = None
        self._version = avro_string(version)
        keys = [avro_string(name) for name in names]
        count = zigzag(len(keys))
        # One map block holding every feature, then the block terminator 0 (as fastavro writes it).
        self._map = struct.Struct(f"<{len(count)}s" + "".join(f"{len(k)}sd" for k in keys) + "1s")
        self._args: list[object] = [count, *(x for key in keys for x in (key, 0.0)), b"\x00"]
        self._size = len(keys)
        self._at = (0, zigzag(0))
        """computed_at and its encoding: one value per batch, so encoded once per batch."""

    def encode(self, entity_id: str, event_id: str, event_time: int, vector: Sequence[float],
               computed_at: int) -> bytes:
        if len(vector) != self._size:
            raise SerializationError(f"vector has {len(vector)} values, the feature set {self._size}")
        args = self._args.copy()
        args[2:-1:2] = vector
        if computed_at != self._at[0]:
            self._at = (computed_at, zigzag(computed_at))
        return b"".join((self._header(), avro_string(entity_id), avro_string(event_id), zigzag(event_time),
                         self._version, self._map.pack(*args), self._at[1]))

    def _header(self) -> bytes:
        if self._frame is None:  # the schema id is registered on first use (maybe a registry call)
            self._frame = struct.pack(">bI", 0, self._serde.schema_id)
        return self._frame

