"""Loop row: drift onset to the promoted model serving, on a stack of its own with all eight services, the
same recipe `./dev up` runs (kestrel.devstack.loop and demo_loop): steady payments, then the new-country wave."""

from __future__ import annotations

from pathlib import Path

from bench.report import Row
from kestrel.devstack import demo_loop, loop
from kestrel.devstack.services import runnable
from kestrel.devstack.stack import ADDRESSES, Stack
from kestrel.devstack.supervisor import Supervisor
from kestrel.inference.settings import InferenceSettings

GROUP = "loop"


async def run(_bootstrap: str, workdir: Path, _quick: bool) -> list[Row]:
    model = InferenceSettings().model_name
    workdir.chmod(workdir.stat().st_mode | 0o001)  # PostgreSQL runs as its own user and must reach its state dir
    stack = Stack(workdir / "loop", triton_models=(model,), ports={})
    await stack.start()
    supervisor = None
    try:
        settings = await loop.prepare(stack.state_dir, stack.postgres.dsn, model, actor="bench")
        supervisor = Supervisor(stack.state_dir, stack.env | settings, runnable(stack.addresses, ADDRESSES))
        await supervisor.start()
        await supervisor.wait_ready(240)
        took = await demo_loop.run(stack.endpoints, model, stack.state_dir)
    finally:
        if supervisor is not None:
            await supervisor.stop()
        await stack.stop()
    recipe = "./dev up's loop: new-country wave, the rule's for: 30s waits for a second 19 s window, 20 s shadow"
    if took is None:
        return [Row(GROUP, "drift onset to the promoted model serving", notes=f"did not close in this run; {recipe}")]
    notes = f"{took:.1f} s, one run; {recipe}"
    return [Row(GROUP, "drift onset to the promoted model serving", notes=notes, extra={"onset_to_serving_s": took})]
