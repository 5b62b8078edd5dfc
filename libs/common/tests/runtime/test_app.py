"""The Runtime's health: live while loops run, ready once started and every check holds, a fatal error exits."""

from __future__ import annotations

import asyncio

from kestrel.common.runtime.app import Runtime
from kestrel.common.settings import KestrelSettings


class Loop:
    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    async def wait(self) -> None:
        await self.done


async def start_all(components: list) -> None:
    for component in components:
        await component.start()


async def test_ready_only_after_every_component_started_and_while_checks_hold() -> None:
    rt = Runtime("svc", KestrelSettings(metrics_port=0))
    healthy = [True]
    rt.ready_when(lambda: healthy[0])
    components = rt.assemble([rt.watch(Loop())], health_port=None)
    assert rt.live() and not rt.ready()
    await start_all(components)
    assert rt.ready()
    healthy[0] = False
    assert rt.live() and not rt.ready()


async def test_a_dead_loop_fails_the_service_and_asks_it_to_stop() -> None:
    rt = Runtime("svc", KestrelSettings(metrics_port=0))
    loop = Loop()
    components = rt.assemble([rt.watch(loop)], health_port=None)
    await start_all(components)
    loop.done.set_exception(RuntimeError("broker gone"))
    await asyncio.wait_for(rt.stop.wait(), 1)
    assert rt.failed and not rt.live() and not rt.ready()


async def test_fail_marks_not_ready_and_sets_the_stop_event() -> None:
    rt = Runtime("svc", KestrelSettings(metrics_port=0))
    await start_all(rt.assemble([], health_port=None))
    rt.fail("producer fenced")
    assert rt.stop.is_set() and rt.failed and not rt.ready() and rt.fatal == "producer fenced"
