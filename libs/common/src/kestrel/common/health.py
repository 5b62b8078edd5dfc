"""A minimal HTTP(S) health endpoint on the event loop: it answers only while the loop itself is responsive."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from kestrel.common.errors import UnavailableError

log = structlog.get_logger()

T = TypeVar("T")

_STATUS = {True: b"200 OK", False: b"503 Service Unavailable"}


def server_tls(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """The health endpoint's TLS from the service's own certificate (None without one). No client certificate is
    asked: the kubelet's HTTPS probe presents none and does not verify ours."""
    if not certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


class HealthEndpoint:
    """GET /healthz and /readyz answer 200 or 503 from their checks; port 0 disables the endpoint. With `tls`,
    only HTTPS is spoken."""

    def __init__(
        self,
        port: int,
        checks: dict[str, Callable[[], bool]],
        host: str = "0.0.0.0",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port
        self._host = host
        self._checks = checks
        self._tls = tls
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if self.port:
            self._server = await asyncio.start_server(
                self._serve, self._host, self.port, ssl=self._tls, ssl_handshake_timeout=5 if self._tls else None
            )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.TimeoutError, ValueError):
            request = await asyncio.wait_for(reader.readline(), 5)
            parts = request.split()
            check = self._checks.get(parts[1].decode() if len(parts) > 1 else "")
            ok = check is not None and check()
            body = b"ok\n" if ok else b"unavailable\n" if check else b"not found\n"
            status = _STATUS[ok] if check else b"404 Not Found"
            writer.write(
                b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (status, len(body), body)
            )
            await writer.drain()
        writer.close()


class SinkState:
    """Whether the last write to a sink (Redis, PostgreSQL) went through: None until the first write, logged once
    per change (warning when it starts failing, info when it recovers), exported as a 0/1 gauge. `ready` is what
    /readyz asks: not known to be failing."""

    def __init__(self, name: str, gauge: Any) -> None:
        self.name = name
        self.ok: bool | None = None
        self._gauge = gauge

    async def write(self, attempt: Awaitable[T]) -> T:
        """Await one write; UnavailableError (the sink is down) marks it failing and is raised on."""
        try:
            result = await attempt
        except UnavailableError:
            self._set(False)
            raise
        self._set(True)
        return result

    def ready(self) -> bool:
        return self.ok is not False

    def _set(self, ok: bool) -> None:
        if ok != self.ok:
            (log.info if ok else log.warning)(f"{self.name}_writes_{'ok' if ok else 'failing'}")
        self.ok = ok
        self._gauge.set(1 if ok else 0)
