"""Start-up waits for a dependency with backoff until the deadline, then fails in one line."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from kestrel.common.runtime.startup import Dependency, StartupError, wait_for_dependencies


def flaky(failures: int) -> tuple[Dependency, list[int]]:
    calls: list[int] = []

    async def probe() -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionRefusedError(111, "Connection refused")

    return Dependency("kafka", "127.0.0.1:1", "KESTREL_KAFKA_BOOTSTRAP", probe), calls


async def test_a_dependency_that_comes_up_is_waited_for_with_one_warning() -> None:
    dependency, calls = flaky(3)
    with capture_logs() as logs:
        await wait_for_dependencies([dependency], deadline_s=5, initial_s=0.01, max_s=0.02)
    assert len(calls) == 4
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["kafka not reachable at 127.0.0.1:1 (KESTREL_KAFKA_BOOTSTRAP); retrying"]


async def test_past_the_deadline_start_up_fails_in_one_line_naming_setting_and_address() -> None:
    dependency, calls = flaky(10**6)
    with pytest.raises(StartupError) as caught:
        await wait_for_dependencies([dependency], deadline_s=0.3, initial_s=0.01, max_s=0.05)
    message = str(caught.value)
    assert message.startswith("kafka not reachable at 127.0.0.1:1 (KESTREL_KAFKA_BOOTSTRAP) after 0.3 s")
    assert "\n" not in message and len(calls) > 2


async def test_a_reachable_dependency_is_probed_once_and_logs_nothing() -> None:
    dependency, calls = flaky(0)
    with capture_logs() as logs:
        await wait_for_dependencies([dependency], deadline_s=1)
    assert calls == [1] and logs == []
