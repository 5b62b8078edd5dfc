"""`kestrel-drift report`: one self-contained HTML page of drift reports read from a file, the topic or PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.errors import KestrelError
from kestrel.common.settings import KafkaSettings, env_epilog, load_settings, setting_name

PROG = "kestrel-drift"


class ReportSettings(KafkaSettings):
    """Where the reports are: the drift monitor's own variables, or the shared KESTREL_ ones."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_DRIFT_MONITOR_")

    reports_topic: str = "kestrel.drift-reports.v1"
    """Catalogue name of the drift-report topic (--from-topic)."""
    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """PostgreSQL URL holding the drift_reports table (--from-postgres; it may hold a password: never printed)."""
    postgres_timeout_s: float = 5.0
    """Connect timeout of each PostgreSQL attempt."""


class ReportError(KestrelError):
    """Bad input or an empty selection: the message is the one line the command prints."""


@dataclass(frozen=True)
class Selection:
    """Which windows to show. No report id, window start or range: the newest window."""

    model_name: str | None = None
    model_version: str | None = None
    report_id: str | None = None
    window_start: int | None = None
    since: int | None = None
    until: int | None = None
    subject: str | None = None
    """predictions or events: a model version has a series of each."""

    @property
    def newest_only(self) -> bool:
        return self.report_id is None and self.window_start is None and self.since is None and self.until is None

    def admits(self, report: Mapping[str, Any]) -> bool:
        start = report["window_start"]
        return (
            self.subject in (None, report.get("subject"))
            and self.model_name in (None, report.get("model_name"))
            and self.model_version in (None, report.get("model_version"))
            and self.report_id in (None, report["report_id"])
            and self.window_start in (None, start)
            and (self.since is None or start >= self.since)
            and (self.until is None or start < self.until)
        )


def select(reports: Iterable[Mapping[str, Any]], selection: Selection) -> list[Mapping[str, Any]]:
    """The selected windows of one series (subject, model name and version), oldest first; a window reported twice
    (the monitor reprocessed it after a restart) counts once, by its newest report."""
    latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for report in reports:
        if selection.admits(report):
            key = (*_series(report), report["window_start"])
            if key not in latest or report["created_at"] >= latest[key]["created_at"]:
                latest[key] = report
    series = sorted({key[:-1] for key in latest}, key=str)
    if not series:
        raise ReportError("no drift report matches the selection")
    if len(series) > 1:
        names = ", ".join(f"{name}/{version} ({subject})" for subject, name, version in series)
        raise ReportError(
            f"reports of several series match ({names}): choose one with --model-name/--model-version/--subject"
        )
    chosen = sorted(latest.values(), key=lambda r: r["window_start"])
    return chosen[-1:] if selection.newest_only else chosen


def _series(report: Mapping[str, Any]) -> tuple[Any, ...]:
    return report.get("subject"), report.get("model_name"), report.get("model_version")


def parse_time(text: str) -> int:
    """ISO 8601 (no zone: UTC) or epoch milliseconds, to epoch milliseconds."""
    if text.lstrip("-").isdigit():
        return int(text)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def decode(record: Mapping[str, Any]) -> dict[str, Any]:
    """A DriftReport as the Avro schema decodes it (defaults filled, timestamps in ms), from JSON-shaped input whose
    timestamps may be ISO strings; ReportError when it does not fit the schema."""
    from fastavro import schemaless_reader, schemaless_writer

    schema = _schema()
    fixed = dict(record)
    for field in ("window_start", "window_end", "created_at"):
        if isinstance(fixed.get(field), str):
            fixed[field] = parse_time(fixed[field])
    buf = io.BytesIO()
    try:
        schemaless_writer(buf, schema, fixed)
    except Exception as exc:  # fastavro raises ValueError/TypeError/KeyError...: all mean the record does not fit
        raise ReportError(f"not a DriftReport: {type(exc).__name__}: {exc}") from exc
    buf.seek(0)
    return dict(schemaless_reader(buf, schema, None))  # type: ignore[arg-type]


@functools.cache
def _schema() -> dict[str, Any]:
    from kestrel.common.avro import plain_schema, read_schema

    return plain_schema(read_schema("drift_report"))


def _time_argument(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (ISO 8601, or epoch milliseconds): {text!r}") from None


def read_file(path: Path) -> list[dict[str, Any]]:
    """Reports from a file of JSON lines (one DriftReport per line; blank lines skipped)."""
    reports = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                reports.append(decode(json.loads(line)))
            except (ValueError, ReportError) as exc:
                raise ReportError(f"{path}:{number}: {exc}") from None
    return reports


async def read_topic(settings: ReportSettings) -> list[dict[str, Any]]:
    """Every report on the drift-report topic, read from the beginning to the end offsets it had at the start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from kestrel.common.kafka import aiokafka_config
    from kestrel.common.runtime.bindings import Topics
    from kestrel.common.topics import load_catalogue

    topics = Topics(settings)
    binding = topics.bind(settings.reports_topic)
    serde = topics.serde(binding)
    consumer = AIOKafkaConsumer(**aiokafka_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        if binding.name not in await consumer.topics():
            raise ReportError(f"topic {binding.name} does not exist")
        # The catalogue's count, as kestrel-stack applies it (partitions are only ever added up to it).
        partitions = [TopicPartition(binding.name, p) for p in range(load_catalogue()[binding.declared].partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        values: list[bytes] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await consumer.getmany(*partitions, timeout_ms=1000)
            values.extend(record.value for records in batch.values() for record in records)
    finally:
        await consumer.stop()
    decoded = serde.deserialize_many(values, errors="return")
    if bad := [r for r in decoded if not isinstance(r, dict)]:
        structlog.get_logger().warning(
            "undecodable reports skipped", topic=binding.name, count=len(bad), first=str(bad[0])
        )
    return [r for r in decoded if isinstance(r, dict)]


_REPORTS_SQL = """
SELECT payload FROM drift_reports
WHERE ($1::text IS NULL OR report_id = $1)
  AND ($2::text IS NULL OR payload->>'model_name' = $2)
  AND ($3::text IS NULL OR payload->>'model_version' = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
ORDER BY created_at
"""


async def read_postgres(conn: Any, selection: Selection) -> list[dict[str, Any]]:
    """Candidate reports from the drift_reports table (payload: the report as JSON); `select` narrows them.
    A report is written after its window starts, so created_at >= since loses none of the range."""
    since = None if selection.since is None else datetime.fromtimestamp(selection.since / 1000, UTC)
    rows = await conn.fetch(_REPORTS_SQL, selection.report_id, selection.model_name, selection.model_version, since)
    return [decode(json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]) for r in rows]


async def load(args: argparse.Namespace, selection: Selection) -> list[dict[str, Any]]:
    if args.from_file:
        return read_file(args.from_file)
    from kestrel.common.logs import configure_logging
    from kestrel.common.runtime import probes
    from kestrel.common.runtime.startup import StartupError, wait_for_dependencies

    settings = load_settings(ReportSettings)
    configure_logging("drift-report", settings.log_format, settings.log_level)
    try:
        if args.from_topic:
            await wait_for_dependencies([probes.kafka(settings)], settings.startup_deadline_s)
            return await read_topic(settings)
        await wait_for_dependencies([_postgres(settings)], settings.startup_deadline_s)
    except StartupError as exc:
        raise ReportError(str(exc)) from None
    import asyncpg  # imported here so that `--help` never loads a database client

    conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value(), timeout=settings.postgres_timeout_s)
    try:
        return await read_postgres(conn, selection)
    finally:
        await conn.close()


def _postgres(settings: ReportSettings) -> Any:
    from kestrel.common.runtime.startup import Dependency

    dsn = settings.postgres_dsn.get_secret_value()

    async def probe() -> None:
        import asyncpg

        await (await asyncpg.connect(dsn, timeout=settings.postgres_timeout_s)).close()

    parts = urlsplit(dsn)
    address = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return Dependency("postgres", address, setting_name(settings, "postgres_dsn"), probe)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description="Kestrel drift-monitor tools.")
    commands = top.add_subparsers(dest="command", required=True, metavar="command")
    report = commands.add_parser(
        "report",
        help="render drift reports as one self-contained HTML file",
        description="Render the drift reports of one model version, one window or a time range, as one HTML file "
        "that opens offline. Without --report-id, --window-start, --since or --until: the newest window.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(ReportSettings),
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-file", type=Path, metavar="PATH", help="JSON lines, one DriftReport per line")
    source.add_argument("--from-topic", action="store_true", help="read the kestrel.drift-reports.v1 topic")
    source.add_argument("--from-postgres", action="store_true", help="read the drift_reports table")
    report.add_argument("--model-name", metavar="NAME", help="only this model")
    report.add_argument("--model-version", metavar="VERSION", help="only this model version")
    report.add_argument(
        "--subject", choices=("predictions", "events"), help="only this subject (model inputs and score, or raw events)"
    )
    report.add_argument("--report-id", metavar="ID", help="one report, by id")
    report.add_argument("--window-start", type=_time_argument, metavar="TIME", help="one window, by its start")
    report.add_argument("--since", type=_time_argument, metavar="TIME", help="windows starting at or after TIME")
    report.add_argument("--until", type=_time_argument, metavar="TIME", help="windows starting before TIME")
    report.add_argument(
        "-o", "--output", type=Path, metavar="PATH", default=Path("drift-report.html"), help="the HTML file to write"
    )
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """Exit status 0 with the file written; 1 with one line on stderr when nothing could be rendered."""
    cli = parser()
    args = cli.parse_args(argv)
    if (args.report_id or args.window_start is not None) and (args.since is not None or args.until is not None):
        cli.error("--report-id and --window-start select one window: drop --since/--until")
    selection = Selection(
        args.model_name, args.model_version, args.report_id, args.window_start, args.since, args.until, args.subject
    )
    from kestrel.drift_monitor.render import render

    try:
        windows = select(asyncio.run(load(args, selection)), selection)
    except (ReportError, OSError) as exc:
        raise SystemExit(f"{PROG}: {exc}") from None
    args.output.write_text(render(windows, generated_at=datetime.now(UTC)))
    statuses = [w["status"] for w in windows]
    summary = ", ".join(f"{statuses.count(s)} {s.replace('_', ' ')}" for s in dict.fromkeys(statuses))
    print(f"{PROG}: wrote {args.output} ({len(windows)} window{'s' * (len(windows) != 1)}: {summary})")


if __name__ == "__main__":
    main()
