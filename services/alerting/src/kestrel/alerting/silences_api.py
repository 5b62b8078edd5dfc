"""HTTP API for silences (aiohttp), in Alertmanager's /api/v2 shape, over a SilenceStore.

In the service process it is one more component: `SilencesApi(TopicSilenceStore(settings), port)` with
start()/stop(); or add `silences_routes(store)` to an aiohttp application the process already serves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from kestrel.alerting.silence_store import SilenceStore
from kestrel.alerting.silences import expire, from_api, to_api
from kestrel.common.errors import InvalidArgumentError, KestrelError

log = structlog.get_logger()
Clock = Callable[[], int]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def silences_routes(store: SilenceStore, clock: Clock = _now_ms) -> list[web.RouteDef]:
    """GET/POST /api/v2/silences, GET/DELETE /api/v2/silence/{id} (DELETE expires it, as in Alertmanager)."""

    async def list_silences(request: web.Request) -> web.StreamResponse:
        now = clock()
        found = sorted((await store.all()).values(), key=lambda r: r["starts_at"])
        return web.json_response([to_api(r, now) for r in found])

    async def create(request: web.Request) -> web.StreamResponse:
        record = from_api(await _json_body(request), clock())
        await store.put(record)
        log.info("silence_created", silence=record["silence_id"], created_by=record["created_by"])
        return web.json_response({"silenceID": record["silence_id"]})

    async def get_one(request: web.Request) -> web.StreamResponse:
        return web.json_response(to_api(await _find(store, request.match_info["id"]), clock()))

    async def expire_one(request: web.Request) -> web.StreamResponse:
        record = await _find(store, request.match_info["id"])
        await store.put(expire(record, clock()))
        log.info("silence_expired", silence=record["silence_id"])
        return web.json_response({})

    return [
        web.get("/api/v2/silences", _errors(list_silences)),
        web.post("/api/v2/silences", _errors(create)),
        web.get("/api/v2/silence/{id}", _errors(get_one)),
        web.delete("/api/v2/silence/{id}", _errors(expire_one)),
    ]


class SilencesApi:
    """The silences API on its own port (a component: start() binds, stop() closes); port 0 disables it."""

    def __init__(self, store: SilenceStore, port: int, host: str = "0.0.0.0") -> None:
        self._store, self._port, self._host = store, port, host
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if not self._port:
            return
        app = web.Application()
        app.add_routes(silences_routes(self._store))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("silences_api_listening", port=self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class _NotFound(KestrelError):
    pass


async def _find(store: SilenceStore, silence_id: str) -> dict[str, Any]:
    record = (await store.all()).get(silence_id)
    if record is None:
        raise _NotFound(f"silence {silence_id} not found")
    return record


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError("body", f"not JSON: {exc}") from exc


def _errors(handler: Handler) -> Handler:
    """One error map for every route: bad input 400, unknown id 404, store unreachable 503."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidArgumentError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except _NotFound as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except KestrelError as exc:
            return web.json_response({"error": str(exc)}, status=503)

    return wrapped
