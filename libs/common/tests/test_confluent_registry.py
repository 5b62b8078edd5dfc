"""ConfluentHttpRegistry against a tiny in-process double of the Confluent Schema Registry REST API."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.errors import (
    SchemaNotFoundError,
    SchemaRegistryError,
    SchemaRegistryUnavailableError,
    SerializationError,
)
from kestrel.common.registry import ConfluentHttpRegistry, subject_for


class FakeRegistry:
    """State of the double: ids assigned in order like the real server, plus a request log."""

    def __init__(self, auth: str | None = None) -> None:
        self.auth = auth
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[str] = []
        self.fail_with: int | None = None

    def id_of(self, schema: str) -> int | None:
        def canonical(text: str) -> str:
            return json.dumps(json.loads(text), sort_keys=True)

        return next((i for i, known in self.schemas.items() if canonical(known) == canonical(schema)), None)


def _handler(state: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _refused(self) -> bool:
            state.requests.append(f"{self.command} {self.path}")
            if state.fail_with:
                self._reply(state.fail_with, {"error_code": state.fail_with, "message": "boom"})
            elif state.auth and self.headers.get("Authorization") != state.auth:
                self._reply(401, {"error_code": 401, "message": "Unauthorized"})
            else:
                return False
            return True

        def do_POST(self):
            if self._refused():
                return
            parts = [urllib.parse.unquote(p) for p in self.path.strip("/").split("/")]
            schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
            schema_id = state.id_of(schema)
            if parts[-1] == "versions":  # POST /subjects/{subject}/versions: register
                if schema_id is None:
                    schema_id = len(state.schemas) + 1
                    state.schemas[schema_id] = schema
                state.subjects.setdefault(parts[1], []).append(schema_id)
                return self._reply(200, {"id": schema_id})
            if schema_id not in state.subjects.get(parts[1], []):  # POST /subjects/{subject}: look up
                return self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            return self._reply(200, {"subject": parts[1], "id": schema_id, "version": 1, "schema": schema})

        def do_GET(self):  # GET /schemas/ids/{id}
            if self._refused():
                return
            schema_id = int(self.path.rsplit("/", 1)[-1])
            if schema_id not in state.schemas:
                return self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            return self._reply(200, {"schema": state.schemas[schema_id]})

    return Handler


@pytest.fixture
def fake_registry():
    """Factory: start a double (optionally requiring an Authorization header) and return (state, url)."""
    servers = []

    def start(auth: str | None = None) -> tuple[FakeRegistry, str]:
        state = FakeRegistry(auth)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(server)
        return state, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_register_lookup_and_fetch_with_caching(fake_registry):
    state, url = fake_registry()
    registry = ConfluentHttpRegistry(url)
    subject = subject_for("kestrel.events.v1")
    schema_id = registry.register(subject, load_schema("event"))
    assert registry.register(subject, load_schema("event")) == schema_id
    assert ConfluentHttpRegistry(url).id_for(subject, load_schema("event")) == schema_id
    assert registry.get_by_id(schema_id)["name"] == "kestrel.v1.Event"
    registry.get_by_id(schema_id)
    assert state.requests == [
        "POST /subjects/kestrel.events.v1-value/versions",
        "POST /subjects/kestrel.events.v1-value",
        f"GET /schemas/ids/{schema_id}",
    ]


def test_serde_through_http_registry(fake_registry):
    _, url = fake_registry()
    producer = AvroSerde(ConfluentHttpRegistry(url), "kestrel.labels.v1-value", load_schema("label"))
    consumer = AvroSerde(ConfluentHttpRegistry(url), "kestrel.labels.v1-value", load_schema("label"))
    record = {"event_id": "e", "entity_id": "c", "label": 1, "label_time": 5, "source": "chargeback"}
    data = producer.serialize(record)
    assert data[:5] == b"\x00\x00\x00\x00\x01"  # the server's id, not a fingerprint
    assert consumer.deserialize(data) == record


def test_subjects_are_url_quoted(fake_registry):
    state, url = fake_registry()
    ConfluentHttpRegistry(url).register("odd/subject name", load_schema("label"))
    assert state.requests == ["POST /subjects/odd%2Fsubject%20name/versions"]


def test_basic_auth(fake_registry):
    _, url = fake_registry(auth="Basic " + base64.b64encode(b"kestrel:s3cret").decode())
    with pytest.raises(SchemaRegistryError, match="HTTP 401"):
        ConfluentHttpRegistry(url).register("a-value", load_schema("label"))
    registry = ConfluentHttpRegistry(url, username="kestrel", password="s3cret")
    assert registry.register("a-value", load_schema("label")) == 1
    assert "s3cret" not in repr(registry)


def test_not_found_maps_to_schema_not_found(fake_registry):
    _, url = fake_registry()
    registry = ConfluentHttpRegistry(url)
    with pytest.raises(SchemaNotFoundError, match="HTTP 404 Schema not found"):
        registry.get_by_id(99)
    with pytest.raises(SchemaNotFoundError):
        registry.id_for("a-value", load_schema("label"))
    with pytest.raises(SerializationError, match="unknown schema id 99"):
        AvroSerde(registry, "a-value", load_schema("label")).deserialize(b"\x00\x00\x00\x00\x63\x00")


def test_server_errors_and_outages_are_retryable(fake_registry):
    state, url = fake_registry()
    state.fail_with = 503
    with pytest.raises(SchemaRegistryUnavailableError, match="HTTP 503"):
        ConfluentHttpRegistry(url).get_by_id(1)
    with pytest.raises(SchemaRegistryUnavailableError, match="failed on GET"):
        ConfluentHttpRegistry("http://127.0.0.1:9", timeout=1).get_by_id(1)
