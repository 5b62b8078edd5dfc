"""Dependency outages for the drill: stop Kafka, Redis, PostgreSQL or tritonserver for a while, then start it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError

from kestrel.devstack.process import ServerProcess
from kestrel.devstack.stack import Stack

log = structlog.get_logger()

FLOW_TIMEOUT_S = 180.0


async def outage(
    stack: Stack, target: str, down_s: float, progress: Callable[[], Awaitable[int | None]]
) -> float | None:
    """Stops `target`, waits `down_s`, starts it again; returns the seconds from its return until `progress()`
    (what the consumer group that needs it has committed) moves past where it stood then, None if not within
    FLOW_TIMEOUT_S."""
    component = _component(stack, target)
    if target == "redis":
        await _save_and_shut_down(stack.redis.url)
    await component.stop()
    log.info("drill dependency down", dependency=target, for_s=down_s)
    await asyncio.sleep(down_s)
    await component.start()
    stack.announce({})  # its new pid, for `kestrel-stack down`
    back = time.monotonic()
    stood = None
    while time.monotonic() - back < FLOW_TIMEOUT_S:
        now = await progress()
        if stood is not None and now is not None and now > stood:
            return time.monotonic() - back
        stood = now if stood is None else stood
        await asyncio.sleep(0.5)
    return None


def _component(stack: Stack, target: str) -> ServerProcess:
    component: ServerProcess | None = getattr(stack, target)
    if component is None:
        raise ValueError(f"stop:{target}: the stack runs no {target}")
    return component


async def _save_and_shut_down(url: str) -> None:
    """The dev stack's Redis keeps nothing on disk; a stopped (not wiped) Redis saves first, as a production one
    with persistence would keep its data."""
    client = aioredis.Redis.from_url(url)
    try:
        await client.shutdown(save=True)
    except RedisConnectionError:
        pass  # the server closes the connection as it exits
    finally:
        await client.aclose()
