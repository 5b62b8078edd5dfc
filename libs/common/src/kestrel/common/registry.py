"""Schema registries: a file-backed one with deterministic ids, and a Confluent-compatible HTTP client."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import fastavro
from fastavro.schema import to_parsing_canonical_form

from kestrel.common.errors import (
    IncompatibleSchemaError,
    SchemaNotFoundError,
    SchemaRegistryError,
    SchemaRegistryUnavailableError,
)

Schema = Mapping[str, Any] | str
"""A schema as JSON text, a JSON-like dict, or a fastavro-parsed dict."""


class SchemaRegistry(Protocol):
    """What the Avro serde needs from a registry; implementations cache, so repeat calls are cheap."""

    def register(self, subject: str, schema: Schema) -> int:
        """Register the schema under the subject (idempotent) and return its id."""
        ...

    def id_for(self, subject: str, schema: Schema) -> int:
        """Return the id of an already registered schema; SchemaNotFoundError otherwise."""
        ...

    def get_by_id(self, schema_id: int) -> dict[str, Any]:
        """Return the fastavro-parsed schema with this id; SchemaNotFoundError if unknown."""
        ...


def subject_for(topic: str, *, key: bool = False) -> str:
    """Subject of a topic's value (or key) schema under Confluent's TopicNameStrategy."""
    return f"{topic}-{'key' if key else 'value'}"


def raw_schema(schema: Schema) -> Any:
    """Plain JSON form of a schema: parses JSON text and drops fastavro's private '__' keys."""
    if isinstance(schema, str):
        # Bare primitive names ("string") are valid schemas but not JSON documents.
        return json.loads(schema) if schema.lstrip()[:1] in ("{", "[", '"') else schema
    return _strip_private(schema)


def _strip_private(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _strip_private(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_strip_private(item) for item in node]
    return node


def fingerprint_id(schema: Schema) -> int:
    """Deterministic schema id: the first 31 bits of SHA-256 over the Avro Parsing Canonical Form.

    Any process (or language: Java's SchemaNormalization.parsingFingerprint("SHA-256", s)) derives
    the same id from the same schema with no server. Docs, defaults and logical types are not part
    of the canonical form, so schemas differing only in those share an id; that is safe because
    they are identical on the wire.
    """
    canonical = to_parsing_canonical_form(raw_schema(schema))
    digest = hashlib.sha256(canonical.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def find_schemas_dir() -> Path:
    """Locate schemas/: $KESTREL_SCHEMAS_DIR, packaged data, or the repository this file lives in."""
    if env := os.environ.get("KESTREL_SCHEMAS_DIR"):
        return Path(env)
    here = Path(__file__).resolve()
    # A wheel may ship the schemas as package data; an editable install sits inside the repository.
    candidates = [here.parent / "schemas", *(parent / "schemas" for parent in here.parents)]
    for candidate in candidates:
        if (candidate / "event.avsc").is_file():
            return candidate
    raise SchemaNotFoundError("no schemas/ directory found; set KESTREL_SCHEMAS_DIR")


class FileSchemaRegistry:
    """In-process registry seeded from schemas/*.avsc, with fingerprint ids.

    Producers and consumers agree on ids because ids are computed, not assigned. A reader can
    decode an older writer only if it knows that older schema: pass it via `extra`, or share a
    `store` file that every registering process appends to (the embedded stack does this).
    """

    def __init__(
        self, schemas_dir: Path | str | None = None, *, extra: Iterable[Schema] = (), store: Path | str | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[int, Any] = {}
        self._parsed: dict[int, dict[str, Any]] = {}
        self._subjects: dict[str, set[int]] = {}
        self._store = Path(store) if store else None
        directory = Path(schemas_dir) if schemas_dir else find_schemas_dir()
        for path in sorted(directory.glob("*.avsc")):
            schema = json.loads(path.read_text())
            self._add(_full_name(schema), schema)
        for schema in extra:
            self._add(_full_name(raw_schema(schema)), raw_schema(schema))
        self._load_store()

    def register(self, subject: str, schema: Schema) -> int:
        raw = raw_schema(schema)
        schema_id = self._add(subject, raw)
        if self._store is not None:
            with _locked(self._store) as data:
                data["schemas"].setdefault(str(schema_id), raw)
                subjects = data["subjects"].setdefault(subject, [])
                if schema_id not in subjects:
                    subjects.append(schema_id)
        return schema_id

    def id_for(self, subject: str, schema: Schema) -> int:
        # Ids do not depend on the subject, so any known schema answers, whatever subject it came under.
        schema_id = fingerprint_id(schema)
        if schema_id not in self._schemas:
            self._load_store()
        if schema_id not in self._schemas:
            raise SchemaNotFoundError(f"schema for subject {subject!r} is not registered")
        return schema_id

    def get_by_id(self, schema_id: int) -> dict[str, Any]:
        if schema_id not in self._schemas:
            self._load_store()  # another process may have registered it since we last looked
        with self._lock:
            if schema_id not in self._schemas:
                raise SchemaNotFoundError(f"unknown schema id {schema_id}")
            if schema_id not in self._parsed:
                self._parsed[schema_id] = parse_record(self._schemas[schema_id])
            return self._parsed[schema_id]

    def subjects(self) -> dict[str, list[int]]:
        """Registered subjects and their schema ids (for diagnostics)."""
        with self._lock:
            return {subject: sorted(ids) for subject, ids in self._subjects.items()}

    def _add(self, subject: str, raw: Any) -> int:
        schema_id = fingerprint_id(raw)
        canonical = to_parsing_canonical_form(raw)
        with self._lock:
            known = self._schemas.get(schema_id)
            if known is not None and to_parsing_canonical_form(known) != canonical:
                raise SchemaRegistryError(f"schema id collision on {schema_id}; rename a field or type")
            self._schemas.setdefault(schema_id, raw)
            self._subjects.setdefault(subject, set()).add(schema_id)
        return schema_id

    def _load_store(self) -> None:
        if self._store is None or not self._store.exists():
            return
        data = json.loads(self._store.read_text() or "{}")
        for subject, ids in data.get("subjects", {}).items():
            for schema_id in ids:
                self._add(subject, data["schemas"][str(schema_id)])


@contextlib.contextmanager
def _locked(store: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write the shared store under an exclusive lock, replacing it atomically."""
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(store.read_text() or "{}") if store.exists() else {}
        data.setdefault("schemas", {})
        data.setdefault("subjects", {})
        yield data
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, store)


def _full_name(raw: Any) -> str:
    name = raw.get("name", "") if isinstance(raw, Mapping) else str(raw)
    namespace = raw.get("namespace") if isinstance(raw, Mapping) else None
    return f"{namespace}.{name}" if namespace and "." not in name else name


class ConfluentHttpRegistry:
    """Client for Confluent-compatible registries (Confluent, Karapace, Apicurio's ccompat API).

    Blocking urllib calls, each made at most once per subject/schema or id thanks to the caches;
    async code calls the first lookup through asyncio.to_thread (see AvroSerde.aprepare).
    """

    _CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: Any = None,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._ssl = ssl_context
        self._auth = None
        if username is not None:
            # Accept pydantic SecretStr without importing pydantic here.
            secret = password.get_secret_value() if hasattr(password, "get_secret_value") else password
            token = base64.b64encode(f"{username}:{secret or ''}".encode()).decode()
            self._auth = f"Basic {token}"
        self._ids: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"ConfluentHttpRegistry({self.url!r}, auth={'basic' if self._auth else None})"

    def register(self, subject: str, schema: Schema) -> int:
        key = (subject, _cache_key(schema))
        if key not in self._ids:
            body = {"schema": json.dumps(raw_schema(schema))}
            answer = self._request("POST", f"/subjects/{_quote(subject)}/versions", body)
            self._ids[key] = int(answer["id"])
        return self._ids[key]

    def id_for(self, subject: str, schema: Schema) -> int:
        key = (subject, _cache_key(schema))
        if key not in self._ids:
            body = {"schema": json.dumps(raw_schema(schema))}
            answer = self._request("POST", f"/subjects/{_quote(subject)}", body)
            self._ids[key] = int(answer["id"])
        return self._ids[key]

    def get_by_id(self, schema_id: int) -> dict[str, Any]:
        if schema_id not in self._by_id:
            answer = self._request("GET", f"/schemas/ids/{int(schema_id)}")
            if answer.get("schemaType", "AVRO") != "AVRO":
                raise SchemaRegistryError(f"schema id {schema_id} is {answer['schemaType']}, not AVRO")
            self._by_id[schema_id] = parse_record(json.loads(answer["schema"]))
        return self._by_id[schema_id]

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", self._CONTENT_TYPE)
        if data is not None:
            request.add_header("Content-Type", self._CONTENT_TYPE)
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._ssl) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(method, path, exc) from exc
        except OSError as exc:  # URLError, timeouts, refused connections
            raise SchemaRegistryUnavailableError(
                f"schema registry {self.url} failed on {method} {path}: {exc}"
            ) from exc
        try:
            answer: dict[str, Any] = json.loads(payload)
            return answer
        except ValueError as exc:
            raise SchemaRegistryError(f"schema registry {method} {path}: answer is not JSON") from exc


def _http_error(method: str, path: str, exc: urllib.error.HTTPError) -> SchemaRegistryError:
    try:
        detail = json.loads(exc.read()).get("message", "")
    except (OSError, ValueError, AttributeError):
        detail = ""
    message = f"schema registry {method} {path}: HTTP {exc.code} {detail}".rstrip()
    if exc.code == 404:
        return SchemaNotFoundError(message)
    if exc.code == 409:
        return IncompatibleSchemaError(message)
    if exc.code >= 500:
        return SchemaRegistryUnavailableError(message)
    return SchemaRegistryError(message)


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _cache_key(schema: Schema) -> str:
    return json.dumps(raw_schema(schema), sort_keys=True)


def parse_record(schema: Any) -> dict[str, Any]:
    """fastavro's parsed form of a record schema (a dict: every Kestrel value schema is a record)."""
    parsed = fastavro.parse_schema(schema)
    if not isinstance(parsed, dict):
        raise SchemaRegistryError(f"not a record schema: {str(schema)[:80]}")
    return parsed
