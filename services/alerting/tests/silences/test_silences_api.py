"""The silences HTTP API over an in-memory store: Alertmanager's /api/v2 routes, status codes and shapes."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kestrel.alerting import silences
from kestrel.alerting.silences_api import silences_routes
from kestrel.common.errors import UnavailableError

NOW = 1_800_000_000_000


class MemoryStore:
    """The topic's semantics without Kafka: every version appended, the latest per id read back."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.down = False

    async def put(self, record):
        self.records.append(dict(record))

    async def all(self):
        if self.down:
            raise UnavailableError("kafka unreachable")
        return silences.latest(self.records)


@pytest.fixture
async def api():
    store = MemoryStore()
    app = web.Application()
    app.add_routes(silences_routes(store, clock=lambda: NOW))
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, store
    await client.close()


BODY = {
    "matchers": [{"name": "model", "value": "fraud", "isRegex": False, "isEqual": True}],
    "startsAt": silences.rfc3339(NOW),
    "endsAt": silences.rfc3339(NOW + 7_200_000),
    "createdBy": "ana",
    "comment": "retraining",
}


async def test_create_list_get_expire(api):
    client, store = api
    created = await client.post("/api/v2/silences", json=BODY)
    assert created.status == 200
    silence_id = (await created.json())["silenceID"]
    listed = await (await client.get("/api/v2/silences")).json()
    assert [(s["id"], s["status"]["state"], s["createdBy"]) for s in listed] == [(silence_id, "active", "ana")]
    one = await client.get(f"/api/v2/silence/{silence_id}")
    assert (await one.json())["matchers"] == BODY["matchers"]
    assert (await client.delete(f"/api/v2/silence/{silence_id}")).status == 200
    shown = await (await client.get(f"/api/v2/silence/{silence_id}")).json()
    assert shown["status"] == {"state": "expired"}
    assert len(store.records) == 2, "expiry writes a new version of the same id"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**BODY, "matchers": []}, "matchers"),
        ({k: v for k, v in BODY.items() if k != "comment"}, "comment"),
        ({**BODY, "endsAt": "tomorrow"}, "time"),
    ],
)
async def test_bad_silences_answer_400_naming_the_field(api, body, needle):
    client, store = api
    answer = await client.post("/api/v2/silences", json=body)
    assert answer.status == 400 and needle in (await answer.json())["error"]
    assert store.records == []


async def test_not_json_is_400(api):
    client, _ = api
    assert (await client.post("/api/v2/silences", data=b"{")).status == 400


async def test_unknown_id_is_404(api):
    client, _ = api
    assert (await client.get("/api/v2/silence/nope")).status == 404
    assert (await client.delete("/api/v2/silence/nope")).status == 404


async def test_store_down_is_503(api):
    client, store = api
    store.down = True
    answer = await client.get("/api/v2/silences")
    assert answer.status == 503 and "unreachable" in (await answer.json())["error"]


async def test_component_serves_on_its_port_and_stops():
    import aiohttp

    from kestrel.alerting.silences_api import SilencesApi
    from kestrel.devstack.ports import free_port

    port = free_port()
    api = SilencesApi(MemoryStore(), port, host="127.0.0.1")
    await api.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/api/v2/silences") as got:
            assert got.status == 200 and await got.json() == []
    finally:
        await api.stop()
    await SilencesApi(MemoryStore(), 0).start()
