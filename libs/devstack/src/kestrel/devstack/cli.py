"""`kestrel-stack`: run the embedded stack (up, down, status, env) and apply the topic catalogue."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import structlog

from kestrel.common.errors import KestrelError
from kestrel.common.logs import configure_logging
from kestrel.common.topics import load_catalogue
from kestrel.devstack import record
from kestrel.devstack.paths import default_state_dir
from kestrel.devstack.process import ComponentError
from kestrel.devstack.stack import SERVING_MODELS, Stack
from kestrel.devstack.topics import apply_topics

log = structlog.get_logger()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("kestrel-stack", fmt="console", level=args.log_level)
    args.state_dir = Path(args.state_dir or os.environ.get("KESTREL_STACK_DIR") or default_state_dir()).absolute()
    try:
        return asyncio.run(args.handler(args))
    except KestrelError as exc:
        print(f"kestrel-stack: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kestrel-stack", description=__doc__)
    parser.add_argument("--state-dir", help="where servers keep data and logs (default: <repo>/.kestrel/stack)")
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start Kafka, Redis, PostgreSQL and tritonserver; Ctrl-C stops them")
    up.add_argument("--detach", action="store_true", help="return once ready and leave the servers running")
    up.add_argument("--no-triton", action="store_true", help="do not start tritonserver")
    up.add_argument("--fresh", action="store_true", help="delete the previous state (topics, tables) first")
    up.add_argument("--demo", action="store_true",
                    help="once the stack is ready, run ingest, features, feature-writer and inference here and "
                         "push sample traffic through them (kestrel.devstack.demo)")
    up.set_defaults(handler=_up)

    commands.add_parser("down", help="stop everything `up` started").set_defaults(handler=_down)
    commands.add_parser("status", help="which servers run, and where").set_defaults(handler=_status)
    commands.add_parser("env", help="print the stack.env of the running stack").set_defaults(handler=_env)

    topics = commands.add_parser("topics", help="topic catalogue").add_subparsers(required=True, metavar="ACTION")
    apply = topics.add_parser("apply", help="create/grow/reconfigure topics from infra/topics.yaml")
    apply.add_argument("--bootstrap", help="default: $KESTREL_KAFKA_BOOTSTRAP, else the running stack's broker")
    apply.add_argument("--prefix", default="", help="prepended to every topic name")
    apply.add_argument("--file", help="catalogue file (default: $KESTREL_TOPICS_FILE or infra/topics.yaml)")
    apply.set_defaults(handler=_topics_apply)
    return parser


async def _up(args: argparse.Namespace) -> int:
    if args.demo and args.no_triton:
        print("kestrel-stack: --demo scores with tritonserver; drop --no-triton", file=sys.stderr)
        return 2
    if args.fresh and not record.find_running(args.state_dir):
        shutil.rmtree(args.state_dir, ignore_errors=True)
    stack = Stack(args.state_dir, with_triton=not args.no_triton, triton_models=SERVING_MODELS)
    _cancel_on_signals()
    demo: asyncio.Task[None] | None = None
    leave_running = False
    try:
        await stack.start()
        _print_endpoints(stack)
        demo = asyncio.create_task(_demo(stack.env, keep_serving=not args.detach)) if args.demo else None
        if args.detach:
            if demo is not None:
                await demo
            leave_running = True
            return 0
        return await _watch(stack, demo)
    except asyncio.CancelledError:
        log.info("stopping the stack")
        return 0
    finally:
        if demo is not None:
            await _stop_demo(demo)  # its services stop while Kafka and Redis still answer
        if not leave_running:
            await stack.stop()


async def _watch(stack: Stack, demo: asyncio.Task[None] | None = None) -> int:
    """Block until a signal arrives, `kestrel-stack down` removes our record, a server dies or the demo fails."""
    record_file = stack.state_dir / record.RECORD_FILE
    while record_file.exists():
        if demo is not None and demo.done() and not demo.cancelled() and (exc := demo.exception()) is not None:
            log.error("demo failed; stopping the stack", exc_info=exc)
            return 1
        for component in stack.components:
            if (code := component.exit_code) is not None:
                log.error(
                    "component exited; stopping the stack",
                    component=component.name,
                    code=code,
                    log=str(component.log_path),
                )
                return 1
        await asyncio.sleep(0.5)
    return 0


def _cancel_on_signals() -> None:
    """SIGINT/SIGTERM cancel the running command once (clean stop); repeats are ignored while stopping."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    received: list[int] = []

    def on_signal(sig: int) -> None:
        if not received and task is not None:
            task.cancel()
        received.append(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


def _print_endpoints(stack: Stack) -> None:
    print(f"stack ready; environment file: {stack.state_dir / record.ENV_FILE}")
    for key, value in stack.env.items():
        print(f"  {key}={value}")
    print(f"  logs: {stack.state_dir}/<component>/<component>.log", flush=True)


async def _stop_demo(demo: asyncio.Task[None], timeout: float = 60.0) -> None:
    demo.cancel()
    done, _ = await asyncio.wait({demo}, timeout=timeout)
    if not done:
        log.warning("demo services did not stop in time", timeout_s=timeout)


async def _demo(env: dict[str, str], keep_serving: bool) -> None:
    from kestrel.devstack import demo  # imported on use: it pulls in ingest and the simulator

    await demo.run(env, keep_serving=keep_serving)


async def _down(args: argparse.Namespace) -> int:
    stopped = await record.down(args.state_dir)
    print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running in {args.state_dir}")
    return 0


async def _status(args: argparse.Namespace) -> int:
    found = record.StackRecord.load(args.state_dir)
    if found is None:
        print(f"not running ({args.state_dir})")
        return 1
    alive = found.alive()
    for name, ok in alive.items():
        print(f"{name:10} {'running' if ok else 'STOPPED':8} pid {found.components[name]['pid']}")
    for key, value in found.env.items():
        print(f"  {key}={value}")
    return 0 if all(alive.values()) else 1


async def _env(args: argparse.Namespace) -> int:
    path = args.state_dir / record.ENV_FILE
    if not path.exists():
        print(f"no stack.env in {args.state_dir}: is the stack up?", file=sys.stderr)
        return 1
    print(path.read_text(), end="")
    return 0


async def _topics_apply(args: argparse.Namespace) -> int:
    bootstrap = args.bootstrap or os.environ.get("KESTREL_KAFKA_BOOTSTRAP") or _recorded_bootstrap(args.state_dir)
    changes = await apply_topics(bootstrap, load_catalogue(args.file), prefix=args.prefix)
    print(f"created: {changes.created or '-'}")
    print(f"partitions: {changes.partitions or '-'}")
    print(f"configs: {changes.configs or '-'}")
    return 0


def _recorded_bootstrap(state_dir: Path) -> str:
    found = record.StackRecord.load(state_dir)
    if found is None:
        hint = "pass --bootstrap, set KESTREL_KAFKA_BOOTSTRAP or start the stack"
        raise ComponentError("topics", f"no broker given: {hint}")
    return found.env["KESTREL_KAFKA_BOOTSTRAP"]


if __name__ == "__main__":
    sys.exit(main())
