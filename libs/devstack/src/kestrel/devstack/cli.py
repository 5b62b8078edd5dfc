"""`kestrel-stack`: run the embedded stack and its services (up, down, status, env, ps, restart, kill), apply topics,
run the fault drill."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import structlog

from kestrel.common.errors import KestrelError
from kestrel.common.logs import configure_logging
from kestrel.common.settings import load_settings
from kestrel.common.topics import load_catalogue
from kestrel.devstack import control, detach, record
from kestrel.devstack.drill import command as drill_command
from kestrel.devstack.paths import default_state_dir
from kestrel.devstack.process import ComponentError
from kestrel.devstack.services import parse_replicas, runnable
from kestrel.devstack.stack import ADDRESSES, Stack
from kestrel.devstack.supervisor import Supervisor
from kestrel.devstack.topics import apply_topics
from kestrel.inference.settings import InferenceSettings

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

    up = commands.add_parser(
        "up",
        help="start Kafka, Redis, PostgreSQL, tritonserver and every service as its own "
        "supervised process; Ctrl-C stops them",
    )
    up.add_argument("--detach", action="store_true", help="run in the background; return once everything is ready")
    up.add_argument("--no-triton", action="store_true", help="do not start tritonserver (nor inference)")
    up.add_argument("--fresh", action="store_true", help="delete the previous state (topics, tables) first")
    up.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="run N processes of a consumer service, e.g. features=2 (repeatable)",
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="start from a fresh state, run the services with the loop's shrunk timings and close the loop: "
        "drift -> alert -> retrain -> shadow -> promoted, then its timeline and page (kestrel.devstack.demo_loop); "
        "then push sample traffic through the services (kestrel.devstack.demo)",
    )
    up.add_argument("--keep-state", action="store_true", help=argparse.SUPPRESS)  # --demo's background process
    up.set_defaults(handler=_up)

    commands.add_parser("down", help="stop everything `up` started").set_defaults(handler=_down)
    commands.add_parser("status", help="which servers run, and where").set_defaults(handler=_status)
    commands.add_parser("env", help="print the stack.env of the running stack").set_defaults(handler=_env)
    ps = commands.add_parser("ps", help="the service processes: replica, pid, state, uptime, restarts, log")
    ps.add_argument("--json", action="store_true", help="print the supervisor's records as JSON")
    ps.set_defaults(handler=_ps)
    for name, handler, text in (
        ("restart", _restart, "stop (SIGTERM) and start a service's processes again; also brings back killed ones"),
        ("kill", _kill, "SIGKILL a service's processes and keep them down until `restart` (fault drills)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("service")
        command.add_argument("--replica", type=int, help="only this replica (default: all)")
        command.set_defaults(handler=handler)

    drill = commands.add_parser("drill", help=drill_command.HELP)
    drill_command.add_arguments(drill)
    drill.set_defaults(handler=drill_command.handle)

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
    try:
        replicas = parse_replicas(args.replicas)
    except (KeyError, ValueError) as exc:
        print(f"kestrel-stack: {exc}", file=sys.stderr)
        return 2
    if (args.fresh or args.demo) and not args.keep_state and not record.find_running(args.state_dir):
        if args.demo:
            print(f"--demo starts from a fresh state: clearing {args.state_dir}", flush=True)
        shutil.rmtree(args.state_dir, ignore_errors=True)
    if args.detach:
        return await detach.run_in_background(args.state_dir, _foreground_argv(args))
    models = () if args.no_triton else _serving_models()
    stack = Stack(args.state_dir, with_triton=not args.no_triton, triton_models=models)
    _cancel_on_signals()
    supervisor: Supervisor | None = None
    supervise: asyncio.Task[None] | None = None
    try:
        await stack.start()
        env = stack.env | (await _loop_settings(stack) if args.demo else {})
        supervisor = Supervisor(stack.state_dir, env, runnable(stack.addresses, ADDRESSES), replicas)
        await supervisor.start()
        supervise = asyncio.create_task(supervisor.supervise())
        await supervisor.wait_ready()
        stack.announce(_service_addresses(supervisor))
        _print_endpoints(stack)
        if args.demo:
            await _demo(stack, supervisor)
        print(f"{detach.READY} (Ctrl-C or `kestrel-stack down` stops it)", flush=True)
        return await _watch(stack, supervise)
    except asyncio.CancelledError:
        log.info("stopping the stack")
        return 0
    finally:
        if supervise is not None:
            supervise.cancel()
        if supervisor is not None:
            await supervisor.stop()  # services stop while Kafka and Redis still answer
        await stack.stop()


def _foreground_argv(args: argparse.Namespace) -> list[str]:
    """The same `up` without --detach (nor --fresh, done already), for the background process."""
    argv = ["--state-dir", str(args.state_dir), "--log-level", args.log_level, "up"]
    argv += ["--no-triton"] * args.no_triton + ["--demo", "--keep-state"] * args.demo
    return argv + [f"--replicas={spec}" for spec in args.replicas]


def _serving_models() -> tuple[str, ...]:
    """The model inference will ask Triton for, read from the environment the service gets too."""
    return (load_settings(InferenceSettings).model_name,)


def _service_addresses(supervisor: Supervisor) -> dict[str, str]:
    """Client-facing addresses of the services, for stack.env (kestrel-sim reads ingest_addr)."""
    return {"ingest_addr": supervisor.first("ingest").address("grpc_port")}


async def _watch(stack: Stack, supervise: asyncio.Task[None]) -> int:
    """Block until a signal arrives, `kestrel-stack down` removes our record, a server dies or supervision fails."""
    record_file = stack.state_dir / record.RECORD_FILE
    while record_file.exists():
        if supervise.done():
            log.error("service supervision failed; stopping the stack", exc_info=supervise.exception())
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
    print(f"stack ready; environment file: {stack.state_dir / record.ENV_FILE} (set -a; . it; then any service)")
    for key, value in stack.env.items():
        print(f"  {key}={value}")
    for key, value in stack.endpoints.items():
        if key not in stack.env:
            print(f"  ({key}={value})")
    print(f"  server logs: {stack.state_dir}/<server>/<server>.log")
    for line in control.format_rows(control.read_status(stack.state_dir)):
        print(f"  {line}")
    print("  kestrel-stack ps | restart SERVICE | kill SERVICE", flush=True)


async def _loop_settings(stack: Stack) -> dict[str, str]:
    """The loop's settings for the services (kestrel.devstack.loop), its rules file, and the checked-in model
    registered as the champion: what the demo's loop needs before the services start."""
    from kestrel.devstack import loop  # imported on use: it pulls in the model and registry libraries

    return await loop.prepare(stack.state_dir, stack.postgres.dsn, _serving_models()[0], actor="kestrel-stack")


async def _demo(stack: Stack, supervisor: Supervisor) -> None:
    from kestrel.devstack import demo, demo_loop  # imported on use: they pull in the simulator

    await demo_loop.run(stack.endpoints, _serving_models()[0], stack.state_dir)
    await demo.run(stack.endpoints, demo.Services.of(supervisor))


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


async def _ps(args: argparse.Namespace) -> int:
    rows = control.read_status(args.state_dir)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print("\n".join(control.format_rows(rows)))
    else:
        print(f"no services running in {args.state_dir}")
    return 0 if rows else 1


async def _restart(args: argparse.Namespace) -> int:
    names = await control.restart(args.state_dir, args.service, args.replica)
    print(f"restarted: {', '.join(names)}")
    return 0


async def _kill(args: argparse.Namespace) -> int:
    names = await control.kill(args.state_dir, args.service, args.replica)
    print(f"killed: {', '.join(names) or '-'} (down until `kestrel-stack restart {args.service}`)")
    return 0


async def _topics_apply(args: argparse.Namespace) -> int:
    bootstrap = args.bootstrap or os.environ.get("KESTREL_KAFKA_BOOTSTRAP") or _recorded_bootstrap(args.state_dir)
    changes = await apply_topics(bootstrap, load_catalogue(args.file), prefix=args.prefix)
    print(f"created: {changes.created or '-'}")
    print(f"partitions: {changes.partitions or '-'}")
    print(f"configs: {changes.configs or '-'}")
    if changes.capped:
        print(f"fewer brokers than the catalogue's replication: {changes.capped_summary()}")
    return 0


def _recorded_bootstrap(state_dir: Path) -> str:
    found = record.StackRecord.load(state_dir)
    if found is None:
        hint = "pass --bootstrap, set KESTREL_KAFKA_BOOTSTRAP or start the stack"
        raise ComponentError("topics", f"no broker given: {hint}")
    return found.env["KESTREL_KAFKA_BOOTSTRAP"]


if __name__ == "__main__":
    sys.exit(main())
