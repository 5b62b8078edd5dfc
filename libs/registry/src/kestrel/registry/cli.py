"""`kestrel-models`: list versions, show lineage and history, register an artifact, promote and roll back by hand."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KestrelSettings, env_epilog, load_settings


class RegistrySettings(KestrelSettings):
    """KESTREL_REGISTRY_POSTGRES_DSN, or the shared KESTREL_POSTGRES_DSN."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_REGISTRY_")

    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """PostgreSQL URL of the registry (migrations applied by kestrel-db-migrate; may hold a password)."""
    postgres_timeout_s: float = 10.0
    """Connect and statement timeout."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kestrel-models",
        description="The model registry: versions, lineage, aliases (champion, challenger) and their audit trail.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(RegistrySettings),
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versions of a model, with aliases and holdout PR-AUC").add_argument("model")
    for name, text in (("show", "one version in full"), ("lineage", "the version and the ones it replaced")):
        one = sub.add_parser(name, help=text)
        one.add_argument("model")
        one.add_argument("version")
    history = sub.add_parser("history", help="the audit trail: every change, who made it and why")
    history.add_argument("model")
    history.add_argument("--version")
    register = sub.add_parser("register", help="register a model artifact directory (kestrel.model's layout)")
    register.add_argument("artifact", type=Path)
    register.add_argument("--parent", help="the version this one was trained to replace")
    register.add_argument("--champion", action="store_true", help="make it the champion if there is none")
    promote = sub.add_parser("promote", help="make a version the champion")
    promote.add_argument("model")
    promote.add_argument("version")
    rollback = sub.add_parser("rollback", help="restore the champion before the current one")
    rollback.add_argument("model")
    alias = sub.add_parser("alias", help="point an alias at a version (or remove it with --remove)")
    alias.add_argument("model")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?")
    alias.add_argument("--remove", action="store_true")
    for changing in (register, promote, rollback, alias):
        changing.add_argument("--reason", default="by hand", help="why (kept in the audit trail)")
        changing.add_argument("--actor", default=None, help="who (default: the OS user)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = load_settings(RegistrySettings)
    from kestrel.registry.models import RegistryError

    try:
        out = asyncio.run(_run(args, settings))
    except (RegistryError, ConnectionError, ValueError) as exc:  # one line, never a traceback
        raise SystemExit(f"kestrel-models: {exc}") from None
    print(out)


async def _run(args: argparse.Namespace, settings: RegistrySettings) -> str:
    import asyncpg

    from kestrel.registry.store import Registry

    dsn, timeout = settings.postgres_dsn.get_secret_value(), settings.postgres_timeout_s
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout, command_timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise ConnectionError(f"PostgreSQL unreachable ({_where(dsn)}): {exc}") from exc
    try:
        return await _command(Registry(conn), args)
    except asyncpg.PostgresError as exc:  # e.g. the registry's migration not applied yet
        raise ConnectionError(f"PostgreSQL ({_where(dsn)}): {type(exc).__name__}: {exc}") from exc
    finally:
        await conn.close()


async def _command(registry: Any, args: argparse.Namespace) -> str:
    actor = getattr(args, "actor", None) or getpass.getuser()
    reason = getattr(args, "reason", "")
    if args.command == "list":
        aliases = await registry.aliases(args.model)
        return _table(await registry.versions(args.model), aliases)
    if args.command == "show":
        return _json(await registry.get(args.model, args.version))
    if args.command == "lineage":
        return "\n".join(
            f"{v.version}  {v.status}  from {v.parent_version or '-'}"
            for v in await registry.lineage(args.model, args.version)
        )
    if args.command == "history":
        return "\n".join(_entry(e) for e in await registry.history(args.model, args.version))
    if args.command == "register":
        return await _register(registry, args, actor, reason)
    if args.command == "promote":
        previous = await registry.promote(args.model, args.version, actor=actor, reason=reason)
        return f"{args.model}: champion {previous or '-'} -> {args.version}"
    if args.command == "rollback":
        restored = await registry.rollback(args.model, actor=actor, reason=reason)
        return f"{args.model}: champion rolled back to {restored}"
    if args.remove:
        previous = await registry.remove_alias(args.model, args.alias, actor=actor, reason=reason)
        return f"{args.model}: alias {args.alias} removed (was {previous or '-'})"
    if not args.version:
        raise ValueError("alias: give a version, or --remove")
    previous = await registry.set_alias(args.model, args.alias, args.version, actor=actor, reason=reason)
    return f"{args.model}: {args.alias} {previous or '-'} -> {args.version}"


async def _register(registry: Any, args: argparse.Namespace, actor: str, reason: str) -> str:
    from kestrel.registry.artifacts import describe
    from kestrel.registry.models import CHAMPION

    version = await registry.register(describe(args.artifact, parent_version=args.parent), actor=actor, reason=reason)
    line = f"{version.model_name}: version {version.version} registered ({version.checksum[:12]})"
    if args.champion and await registry.alias(version.model_name, CHAMPION) is None:
        await registry.promote(version.model_name, version.version, actor=actor, reason=reason)
        line += ", champion"
    return line


def _table(versions: Sequence[Any], aliases: dict[str, str]) -> str:
    named: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        named.setdefault(version, []).append(alias)
    rows = [("version", "status", "aliases", "pr_auc", "created_at", "created_by")]
    for v in versions:
        pr_auc = v.metrics.get("pr_auc")
        rows.append(
            (
                v.version,
                v.status,
                ",".join(sorted(named.get(v.version, []))) or "-",
                f"{pr_auc:.4f}" if pr_auc is not None else "-",
                v.created_at.isoformat(timespec="seconds"),
                v.created_by,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _entry(e: Any) -> str:
    moved = f" {e.alias}: {e.previous_version or '-'} -> {e.version}" if e.alias else f" version {e.version}"
    return f"{e.at.isoformat(timespec='seconds')}  {e.action}{moved}  by {e.actor}: {e.reason}"


def _json(version: Any) -> str:
    doc = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in vars(version).items()}
    if doc.get("reference"):
        doc["reference"] = f"<{len(json.dumps(doc['reference']))} bytes of drift reference statistics>"
    return json.dumps(doc, indent=2, sort_keys=True)


def _where(dsn: str) -> str:
    return dsn.split("@")[-1]  # host:port/db, never the password


if __name__ == "__main__":
    main()
