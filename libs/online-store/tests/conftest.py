"""Fixtures of the online-store tests: a client of the session's Redis, and keys of a test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kestrel.online_store import redis_client


@pytest.fixture
async def client(redis_server: Any) -> AsyncIterator[Any]:
    c = redis_client(redis_server.url)
    yield c
    await c.aclose()


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex}:fs"
