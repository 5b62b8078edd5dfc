"""HTTP API for silences (aiohttp), in Alertmanager's /api/v2 shape, over a SilenceStore.

Mount it in the service process: `web_app.add_routes(silences_routes(store))`, or run it on its own port with
`await serve_silences(store, host, port)` (returns the AppRunner to `cleanup()` at shutdown).
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


async def serve_silences(store: SilenceStore, host: str, port: int) -> web.AppRunner:
    """The silences API on its own listener; `await runner.cleanup()` stops it."""
    app = web.Application()
    app.add_routes(silences_routes(store))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


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
