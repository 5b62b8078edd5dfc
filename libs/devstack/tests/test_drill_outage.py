"""A dependency outage: stopped, down for its time, started again, recovered once its consumer group moves on."""

from __future__ import annotations

from typing import Any

import pytest

from kestrel.devstack.drill import outage as outage_module
from kestrel.devstack.drill.outage import outage


class FakeServer:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    async def stop(self) -> None:
        self.steps.append("stop")

    async def start(self) -> None:
        self.steps.append("start")


class FakeStack:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.kafka = FakeServer(self.steps)
        self.triton = None

    def announce(self, addresses: dict[str, str]) -> None:
        self.steps.append("announce")


def progress_of(values: list[int | None]) -> Any:
    async def progress() -> int | None:
        return values.pop(0) if values else 5

    return progress


async def test_recovered_once_the_group_commits_past_where_it_stood_at_the_return():
    stack = FakeStack()
    seconds = await outage(stack, "kafka", 0.01, progress_of([None, 3, 3, 4]))
    assert seconds is not None and stack.steps == ["stop", "start", "announce"]


async def test_not_recovered_when_the_group_never_moves(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(outage_module, "FLOW_TIMEOUT_S", 1.2)
    assert await outage(FakeStack(), "kafka", 0.0, progress_of([7] * 100)) is None


async def test_a_dependency_the_stack_does_not_run_is_refused():
    with pytest.raises(ValueError, match="runs no triton"):
        await outage(FakeStack(), "triton", 0.0, progress_of([]))
