"""A webhook receiver on loopback that tests run: it records every call and answers what the test says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class WebhookSink:
    """`statuses` are answered in order (then 200); `delay_s` holds every answer back."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        self.calls.append(Call(request.path, dict(request.headers), await request.json(), loop.time()))
        self.arrived.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Call]:
        async with asyncio.timeout(timeout_s):
            while len(self.calls) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.calls


@pytest.fixture
async def webhook_sink() -> AsyncIterator[WebhookSink]:
    sink = WebhookSink()
    app = web.Application()
    app.router.add_post("/{tail:.*}", sink.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    sink.url = str(server.make_url("/hook"))
    yield sink
    await server.close()
