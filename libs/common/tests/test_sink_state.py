"""SinkState: readiness, the gauge and one log line per change, from whether writes to a sink go through."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge
from structlog.testing import capture_logs

from kestrel.common.errors import UnavailableError
from kestrel.common.health import SinkState


async def succeed() -> str:
    return "written"


async def fail() -> str:
    raise UnavailableError("redis unreachable")


async def test_ready_until_a_write_fails_and_again_once_one_goes_through() -> None:
    gauge = Gauge("sink_up", "test", registry=CollectorRegistry())
    sink = SinkState("redis", gauge)
    assert sink.ok is None and sink.ready()
    with capture_logs() as logs:
        assert await sink.write(succeed()) == "written"
        for _ in range(2):
            with pytest.raises(UnavailableError):
                await sink.write(fail())
        assert not sink.ready() and gauge._value.get() == 0
        await sink.write(succeed())
    assert sink.ready() and gauge._value.get() == 1
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("redis_writes_ok", "info"),
        ("redis_writes_failing", "warning"),
        ("redis_writes_ok", "info"),
    ]
