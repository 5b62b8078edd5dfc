"""Avro wire format of feature vectors and predictions, without fastavro's per-field dispatch.

fastavro spends 25-45 us per record walking a 28-entry map<double>. Both records carry the vector packed
(an array<double> in the feature set's definition order, the names coming from its definition), so a
vector is one struct pack on the way out and, for a whole batch, one numpy array on the way in. Encoders
produce bytes identical to fastavro's (tests compare them). The decoder takes the fast path only for
payloads framed with the schema id it was built for, carrying exactly its feature set's number of packed
values; anything else (another writer schema, a features map from an older writer, corrupt bytes) is left
to the generic serde."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from kestrel.common.avro import AvroSerde, frame_header
from kestrel.common.errors import SerializationError

if TYPE_CHECKING:
    from kestrel.featureset.definition import FeatureSet

_ONE_BYTE = [bytes((i,)) for i in range(0x80)]
_DOUBLE = struct.Struct("<d")
_TRUE, _FALSE = b"\x01", b"\x00"


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


_GROUPS = np.arange(0, 64, 7, dtype=np.uint64)
"""The shifts of a long's ten 7-bit groups."""


_ARRAYS_FROM = 32
"""zigzag_many's arrays cost ~30 us whatever the length; below this many values the loop is cheaper
(1.6 us for one, 18 for 16, 35 for 32 against 29-36 us)."""


def zigzag_many(values: Sequence[int] | np.ndarray) -> list[bytes]:
    """zigzag() of every value, computed as arrays (a timestamp is six groups: a Python loop of six steps
    per value, per column, was 7% of the stream scorer's time); a short column value by value."""
    v = np.asarray(values, dtype=np.int64)
    if len(v) < _ARRAYS_FROM:
        return [zigzag(n) for n in v.tolist()]
    z = ((v << 1) ^ (v >> 63)).view(np.uint64)
    groups = ((z[:, None] >> _GROUPS) & 0x7F).astype(np.uint8)
    used = groups != 0
    length = np.where(used.any(axis=1), len(_GROUPS) - np.argmax(used[:, ::-1], axis=1), 1)
    groups |= np.where(np.arange(len(_GROUPS)) < length[:, None] - 1, 0x80, 0).astype(np.uint8)
    blob, width = groups.tobytes(), len(_GROUPS)
    return [blob[i * width : i * width + n] for i, n in enumerate(length.tolist())]


def avro_string(text: str) -> bytes:
    data = text.encode()
    return zigzag(len(data)) + data


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the Avro long at pos; IndexError past the end."""
    b = buf[pos]
    n, shift = b & 0x7F, 7
    pos += 1
    while b & 0x80:
        b = buf[pos]
        n |= (b & 0x7F) << shift
        shift += 7
        pos += 1
    return (n >> 1) ^ -(n & 1), pos


def read_string(buf: bytes, pos: int) -> tuple[str, int]:
    b = buf[pos]
    if b < 0x80 and not b & 1:  # a length under 64 in one byte, the usual id: no read_long call
        end = pos + 1 + (b >> 1)
        if end > len(buf):
            raise IndexError("string runs past the end")
        return buf[pos + 1 : end].decode(), end
    size, pos = read_long(buf, pos)
    end = pos + size
    if size < 0 or end > len(buf):
        raise IndexError("string runs past the end")
    return buf[pos:end].decode(), end


class FeatureMap:
    """A map<double> of fixed keys (the event's numbers): one block with every key in the given order, then 0."""

    def __init__(self, names: Sequence[str]) -> None:
        keys = [avro_string(name) for name in names]
        self._count = zigzag(len(keys))
        self._struct = struct.Struct(f"<{len(self._count)}s" + "".join(f"{len(k)}sd" for k in keys) + "1s")
        self._template: list[object] = [self._count, *(x for key in keys for x in (key, 0.0)), b"\x00"]
        self.size = len(keys)

    def pack(self, values: Sequence[float]) -> bytes:
        if len(values) != self.size:
            raise SerializationError(f"vector has {len(values)} values, the feature set {self.size}")
        args = self._template.copy()
        args[2:-1:2] = values
        return self._struct.pack(*args)


class FeatureArray:
    """The array<double> of one feature set's vector: one block of every value in definition order, then 0."""

    def __init__(self, size: int) -> None:
        self._struct = struct.Struct(f"<{len(zigzag(size))}s{size}d1s") if size else None
        self._count = zigzag(size)
        self.size = size

    def pack(self, values: Sequence[float]) -> bytes:
        if len(values) != self.size:
            raise SerializationError(f"vector has {len(values)} values, the feature set {self.size}")
        if self._struct is None:
            return b"\x00"
        return self._struct.pack(self._count, *values, b"\x00")


class _Framed:
    def __init__(self, serde: AvroSerde, record_name: str) -> None:
        name = serde.schema.get("name") if isinstance(serde.schema, dict) else None
        if name != record_name:
            raise ValueError(f"{type(self).__name__} needs the {record_name} serde, got {name}")
        self._serde = serde
        self._frame: bytes | None = None

    def header(self) -> bytes:
        if self._frame is None:  # the schema id is registered on first use (maybe a registry call)
            self._frame = frame_header(self._serde.schema_id)
        return self._frame


class VectorEncoder(_Framed):
    """Encodes (entity, event, time, vector) as a framed FeatureVector of one feature set, the vector packed in
    feature_values (the features map left empty), with the event's values of the windowed features' sources:
    what the online store's per-card event log keeps."""

    def __init__(
        self,
        serde: AvroSerde,
        names: Sequence[str],
        version: str,
        categories: Sequence[str] = (),
        numbers: Sequence[str] = (),
        log_retention_ms: int = 0,
        log_cap: int = 0,
    ) -> None:
        super().__init__(serde, "kestrel.v1.FeatureVector")
        self._version = avro_string(version)
        self._values = FeatureArray(len(names))
        self._at = (0, zigzag(0))
        """computed_at and its encoding: one value per batch, so encoded once per batch."""
        self._categories = [(source, avro_string(source)) for source in categories]
        self._numbers, self._number_map = list(numbers), FeatureMap(numbers)
        self._logged = bool(categories or numbers) and log_retention_ms > 0
        self._tail = zigzag(log_retention_ms) + zigzag(log_cap)

    @classmethod
    def for_feature_set(cls, serde: AvroSerde, feature_set: FeatureSet) -> VectorEncoder:
        """Vectors of this feature set, carrying the event's values of every windowed feature's source."""
        fs = feature_set
        retention = (fs.max_window_s + fs.allowed_lateness_s) * 1000
        return cls(
            serde,
            fs.names,
            fs.version_id,
            fs.categorical_sources,
            fs.numeric_sources,
            retention,
            fs.max_events_per_entity,
        )

    def encode(
        self,
        entity_id: str,
        event_id: str,
        event_time: int,
        vector: Sequence[float],
        computed_at: int,
        event: Mapping[str, Any] | None = None,
    ) -> bytes:
        """`event` supplies the event's values (`categories`, `numbers`); without it both maps are empty."""
        if computed_at != self._at[0]:
            self._at = (computed_at, zigzag(computed_at))
        logged = event is not None and self._logged
        return b"".join(
            (
                self.header(),
                avro_string(entity_id),
                avro_string(event_id),
                zigzag(event_time),
                self._version,
                b"\x00",
                self._values.pack(vector),
                self._at[1],
                self._event_part(event) if logged else b"\x00\x00\x00\x00\x00",
            )
        )

    def _event_part(self, event: Any) -> bytes:
        """categories, category_window_ms (0), numbers, log_retention_ms, log_cap."""
        numbers = self._number_map.pack([event[s] for s in self._numbers]) if self._numbers else b"\x00"
        return self._category_map(event) + b"\x00" + numbers + self._tail

    def _category_map(self, event: Mapping[str, Any]) -> bytes:
        if not self._categories:
            return b"\x00"
        pairs = [key + avro_string(str(event[source])) for source, key in self._categories]
        return zigzag(len(pairs)) + b"".join(pairs) + b"\x00"


class DecodedVectors(NamedTuple):
    """A batch of FeatureVector payloads decoded column by column; `values` is one (rows, features) array."""

    positions: list[int]
    """Position in the batch of each decoded payload; the others are for the generic serde."""
    entity_ids: list[str]
    event_ids: list[str]
    event_times: list[int]
    versions: list[str]
    values: np.ndarray
    """float64, each row the vector in definition order."""


class VectorDecoder(_Framed):
    """Decodes FeatureVector payloads of the current schema carrying this feature set's packed values."""

    def __init__(self, serde: AvroSerde, size: int) -> None:
        super().__init__(serde, "kestrel.v1.FeatureVector")
        self._head = b"\x00" + (zigzag(size) if size else b"")
        """An empty features map, then the block count of feature_values (an empty array has none)."""
        self._width = 8 * size
        self.size = size

    def decode_batch(self, payloads: Sequence[bytes]) -> DecodedVectors:
        """Every payload the fast path reads (a tombstone, None, it declines); the values of all as one array."""
        out = DecodedVectors([], [], [], [], [], np.empty(0))
        spans: list[bytes] = []
        header, locate = self.header(), self._locate
        for i, payload in enumerate(payloads):
            found = locate(payload, header)
            if found is not None:
                out.positions.append(i)
                out.entity_ids.append(found[0])
                out.event_ids.append(found[1])
                out.event_times.append(found[2])
                out.versions.append(found[3])
                spans.append(payload[found[4] : found[4] + self._width])
        values = np.frombuffer(b"".join(spans), dtype="<f8").reshape(len(spans), self.size)
        return out._replace(values=values)

    def _locate(self, payload: bytes | None, header: bytes) -> tuple[str, str, int, str, int] | None:
        """(entity_id, event_id, event_time, feature_set_version, where the values start), or None: the
        payload is laid out otherwise (another writer schema, a features map, another size, corrupt, a tombstone)."""
        if payload is None or not payload.startswith(header):
            return None
        try:
            entity_id, pos = read_string(payload, len(header))
            event_id, pos = read_string(payload, pos)
            event_time, pos = read_long(payload, pos)
            version, pos = read_string(payload, pos)
            if not payload.startswith(self._head, pos):
                return None
            start = pos + len(self._head)
            pos = start + self._width
            if not payload.startswith(b"\x00", pos):  # the array's closing block
                return None
            pos = _skip_tail(payload, pos + 1)
        except (IndexError, UnicodeDecodeError):
            return None
        if pos != len(payload):
            return None
        return entity_id, event_id, event_time, version, start


def _skip_tail(buf: bytes, pos: int) -> int:
    """The position after computed_at, categories, category_window_ms, numbers, log_retention_ms, log_cap."""
    _, pos = read_long(buf, pos)
    pos = _skip_string_map(buf, pos)
    _, pos = read_long(buf, pos)
    pos = _skip_map(buf, pos, 8)
    for _ in range(2):
        _, pos = read_long(buf, pos)
    return pos


def _skip_map(buf: bytes, pos: int, value_size: int) -> int:
    """The position after an Avro map of fixed-size values (double: 8)."""
    if buf[pos] == 0:  # empty
        return pos + 1
    count, pos = read_long(buf, pos)
    while count:
        if count < 0:
            count = -count
            _, pos = read_long(buf, pos)
        for _ in range(count):
            pos = _skip_bytes(buf, pos) + value_size
        count, pos = read_long(buf, pos)
    return pos


def _skip_bytes(buf: bytes, pos: int) -> int:
    """The position after an Avro string or bytes (its text is not checked: the fast path does not read it)."""
    b = buf[pos]
    size, pos = (b >> 1, pos + 1) if b < 0x80 and not b & 1 else read_long(buf, pos)
    if size < 0 or pos + size > len(buf):
        raise IndexError("string runs past the end")
    return pos + size


def _skip_string_map(buf: bytes, pos: int) -> int:
    """The position after an Avro map<string> (blocks of pairs; a negative count is followed by a byte size)."""
    if buf[pos] == 0:  # empty
        return pos + 1
    count, pos = read_long(buf, pos)
    while count:
        if count < 0:
            count = -count
            _, pos = read_long(buf, pos)
        for _ in range(2 * count):
            pos = _skip_bytes(buf, pos)
        count, pos = read_long(buf, pos)
    return pos


class PredictionEncoder(_Framed):
    """Encodes a framed Prediction (schemas/prediction.avsc) with one feature set's packed feature_values.

    The by-name features map is left empty: readers take the names from the feature set that
    feature_set_version names (kestrel.featureset.records), which halves the features' encode cost."""

    def __init__(self, serde: AvroSerde, names: Sequence[str]) -> None:
        super().__init__(serde, "kestrel.v1.Prediction")
        self._values = FeatureArray(len(names))
        self._strings: dict[str, bytes] = {}

    def _text(self, value: str) -> bytes:
        """Strings that repeat (model name and version, threshold source, feature-set version) are cached."""
        encoded = self._strings.get(value)
        if encoded is None:
            encoded = avro_string(value)
            if len(self._strings) < 1024:
                self._strings[value] = encoded
        return encoded

    def encode(
        self,
        *,
        prediction_id: str,
        event_id: str,
        entity_id: str,
        event_time: int,
        model_name: str,
        model_version: str,
        score: float,
        threshold: float,
        decision: bool,
        feature_set_version: str,
        features: Sequence[float],
        features_age_ms: int,
        degraded: bool,
        flags: Sequence[str],
        latency_us: int,
        source: str,
        predicted_at: int,
    ) -> bytes:
        text = self._text
        flag_bytes = (zigzag(len(flags)) + b"".join(text(f) for f in flags) + b"\x00") if flags else b"\x00"
        return b"".join(
            (
                self.header(),
                avro_string(prediction_id),
                avro_string(event_id),
                avro_string(entity_id),
                zigzag(event_time),
                text(model_name),
                text(model_version),
                _DOUBLE.pack(score),
                _DOUBLE.pack(threshold),
                _TRUE if decision else _FALSE,
                text(feature_set_version),
                b"\x00",
                self._values.pack(features),
                zigzag(features_age_ms),
                _TRUE if degraded else _FALSE,
                flag_bytes,
                zigzag(latency_us),
                text(source),
                zigzag(predicted_at),
            )
        )

    def encode_batch(
        self,
        *,
        prediction_ids: Sequence[str],
        event_ids: Sequence[str],
        entity_ids: Sequence[str],
        event_times: Sequence[int],
        model_name: str,
        model_versions: Sequence[str],
        scores: Sequence[float],
        threshold: float,
        decisions: Sequence[bool],
        feature_set_version: str,
        features: np.ndarray,
        features_age_ms: Sequence[int],
        latency_us: int,
        source: str,
        predicted_at: int,
    ) -> list[bytes]:
        """Predictions sharing model, threshold, feature set, source and times, none degraded or flagged (the
        stream scorer's batch): the shared parts encoded once, each row's values a slice of the array's bytes."""
        size = self._values.size
        if features.shape != (len(prediction_ids), size):
            raise SerializationError(f"features of shape {features.shape}, expected ({len(prediction_ids)}, {size})")
        width, packed = 8 * size, np.ascontiguousarray(features, dtype="<f8").tobytes()
        head, model, text = self.header(), self._text(model_name), self._text
        threshold_bytes = _DOUBLE.pack(threshold)
        # The empty features map, then feature_values: its count (none when empty), the values, the closing 0.
        values_head = text(feature_set_version) + b"\x00" + (zigzag(size) if size else b"")
        tail = _FALSE + b"\x00" + zigzag(latency_us) + text(source) + zigzag(predicted_at)  # no flags
        times, ages = zigzag_many(event_times), zigzag_many(features_age_ms)
        columns = zip(prediction_ids, event_ids, entity_ids, times, model_versions, scores, decisions)
        return [
            b"".join(
                (
                    head,
                    avro_string(prediction_id),
                    avro_string(event_id),
                    avro_string(entity_id),
                    event_time,
                    model,
                    text(version),
                    _DOUBLE.pack(score),
                    threshold_bytes,
                    _TRUE if decision else _FALSE,
                    values_head,
                    packed[i * width : (i + 1) * width],
                    b"\x00",
                    age,
                    tail,
                )
            )
            for i, ((prediction_id, event_id, entity_id, event_time, version, score, decision), age) in enumerate(
                zip(columns, ages)
            )
        ]

    def encode_record(self, record: dict[str, Any], names: Sequence[str]) -> bytes:
        """The same from a record dict (tests, and callers holding records): feature_values, or else the
        features map taken in `names` order."""
        fields = dict(record)
        values = fields.pop("feature_values", None)
        fields["features"] = values or [record["features"][n] for n in names]
        return self.encode(**fields)
