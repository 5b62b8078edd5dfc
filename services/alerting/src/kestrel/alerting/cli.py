"""`kestrel-alerts`: create, list and expire silences on their topic; check a rules file."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kestrel.alerting import silences
from kestrel.common.errors import InvalidArgumentError, KestrelError
from kestrel.common.logs import configure_logging
from kestrel.common.settings import KafkaSettings, env_epilog, load_settings

if TYPE_CHECKING:
    from kestrel.alerting.silence_store import TopicSilenceStore

PROG = "kestrel-alerts"
DEFAULT_RULES = Path("infra") / "alerting" / "rules.yaml"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Silences (kept on the kestrel.alerting-silences.v1 topic) and a check of the rules file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(KafkaSettings),
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _silence_parser(commands.add_parser("silence", help="add, list or expire silences"))
    check = commands.add_parser("check-config", help="validate a rules file (rules, route, inhibit_rules, receivers)")
    check.add_argument("path", nargs="?", type=Path, default=DEFAULT_RULES, help=f"default: {DEFAULT_RULES}")
    return p


def _silence_parser(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="silence the alerts matching every --matcher for --duration")
    add.add_argument("--matcher", action="append", required=True, help='e.g. model="fraud" (repeatable; = != =~ !~)')
    add.add_argument("--duration", default="1h", help="how long, e.g. 2h, 1h30m, 1d (default 1h)")
    add.add_argument("--created-by", default=_user(), help="who silences (default: the login name)")
    add.add_argument("--comment", required=True, help="why: a ticket, a maintenance window")
    listing = actions.add_parser("list", help="the silences, newest version of each; expired ones with --all")
    listing.add_argument("--all", action="store_true", help="show expired silences too")
    listing.add_argument("--json", action="store_true", help="Alertmanager API v2 JSON instead of a table")
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", help="the silence id (from `silence list`)")
    for sub in (add, listing, expire):
        sub.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for Kafka (default 10)")


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.command == "check-config":
            print(check_config(args.path))
            return
        settings = load_settings(KafkaSettings)
        # The producer logs each refused connection as a warning; the user needs only the one line below.
        configure_logging(PROG, settings.log_format, "ERROR")
        output = asyncio.run(run_silence(args, settings))
    except KestrelError as exc:
        raise SystemExit(f"{PROG}: {_one_line(exc)}") from None
    print(output)


def check_config(path: Path) -> str:
    from kestrel.alerting.config import load_config

    config = load_config(path)
    return (
        f"{path}: ok ({len(config.rules)} rules, {len(config.receivers)} receivers, "
        f"{len(config.inhibit_rules)} inhibit rules)"
    )


async def run_silence(args: argparse.Namespace, settings: KafkaSettings) -> str:
    from kestrel.alerting.silence_store import TopicSilenceStore

    store = TopicSilenceStore(settings, timeout_s=args.timeout)
    try:
        if args.action == "add":
            return await _add(store, args)
        if args.action == "expire":
            return await _expire(store, args.id)
        return _listing(await store.all(), args)
    except KestrelError:
        raise
    except Exception as exc:
        raise KestrelError(
            f"kafka not reachable at {settings.kafka_bootstrap} (KESTREL_KAFKA_BOOTSTRAP): {exc}"
        ) from exc


async def _add(store: TopicSilenceStore, args: argparse.Namespace) -> str:
    now = _now_ms()
    record = silences.new_silence(
        [silences.parse_matcher(m) for m in args.matcher],
        now_ms=now,
        ends_at_ms=now + silences.parse_duration(args.duration),
        created_by=args.created_by,
        comment=args.comment,
    )
    await store.put(record)
    return str(record["silence_id"])


async def _expire(store: TopicSilenceStore, silence_id: str) -> str:
    record = (await store.all()).get(silence_id)
    if record is None:
        raise InvalidArgumentError("id", f"no silence {silence_id}")
    await store.put(silences.expire(record, _now_ms()))
    return f"expired {silence_id}"


def _listing(found: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    now = _now_ms()
    shown = [r for r in sorted(found.values(), key=lambda r: r["starts_at"]) if args.all or _live(r, now)]
    if args.json:
        return json.dumps([silences.to_api(r, now) for r in shown], indent=2)
    rows = [("ID", "STATE", "MATCHERS", "ENDS", "CREATED BY", "COMMENT")]
    rows += [
        (
            r["silence_id"],
            silences.status(r, now),
            silences.describe_matchers(r),
            silences.rfc3339(r["ends_at"]),
            r["created_by"],
            r["comment"],
        )
        for r in shown
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]) for row in rows)


def _live(record: dict[str, Any], now: int) -> bool:
    return silences.status(record, now) != "expired"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


if __name__ == "__main__":
    main(sys.argv[1:])
