"""`kestrel-retrain`: ask for a retraining run by hand, and see each model's runs.

`trigger` writes a `retrain_requested` record on kestrel.model-lifecycle.v1 (the service judges it by its policy:
the cooldown and one run at a time still apply, the label count does not); `status` reads the service's runs
table from its changelog topic."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kestrel.common.errors import KestrelError, UnavailableError
from kestrel.common.kafka.drain import read_to_end
from kestrel.common.settings import env_epilog, load_settings
from kestrel.retrain_trigger.policy import MANUAL
from kestrel.retrain_trigger.settings import RetrainTriggerSettings

PROG = "kestrel-retrain"
_QUIET = {"log_level": 0}
"""librdkafka's own connection-refused lines would bury the one line a user needs to read."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Ask the retrain-trigger for a retraining run, or show each model's runs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(RetrainTriggerSettings),
    )
    sub = p.add_subparsers(dest="command", required=True)
    trigger = sub.add_parser("trigger", help="request a run (a retrain_requested lifecycle record)")
    trigger.add_argument("--model", required=True, help="model name, e.g. kestrel_fraud")
    trigger.add_argument("--reason", help="why (audited; default: requested by <user>)")
    status = sub.add_parser("status", help="each model's latest run: step, outcome, versions, why")
    status.add_argument("--model", help="only this model")
    view = sub.add_parser(
        "timeline",
        help="what the loop did (drift, runs, promotions), and with -o one HTML page of quality, drift share and "
        "serving version over time (from PostgreSQL)",
    )
    view.add_argument("--model", required=True, help="model name, e.g. kestrel_fraud")
    view.add_argument("--since-hours", type=float, default=24.0 * 30, help="how far back, by event time (default 720)")
    view.add_argument("--bucket-minutes", type=float, default=60.0, help="width of a point on the charts (default 60)")
    view.add_argument("-o", "--output", help="write the page here (self-contained HTML)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = load_settings(RetrainTriggerSettings)
    from kestrel.common.logs import configure_logging

    configure_logging(PROG, settings.log_format, "ERROR")
    try:
        if args.command == "trigger":
            print(asyncio.run(trigger(settings, args)))
        elif args.command == "timeline":
            print(asyncio.run(timeline(settings, args)))
        else:
            print(status(settings, args.model))
    except KestrelError as exc:
        raise SystemExit(f"{PROG}: {' '.join(str(exc).split())}") from None


def request(model: str, reason: str, now_ms: int) -> dict[str, Any]:
    """The kestrel.model-lifecycle.v1 record of a person's request."""
    return {
        "model_name": model,
        "version": "",
        "stage": MANUAL,
        "metrics": {},
        "artifact_uri": None,
        "reason": reason,
        "at": now_ms,
    }


async def trigger(settings: RetrainTriggerSettings, args: argparse.Namespace) -> str:
    from kestrel.common.kafka.config import librdkafka_config
    from kestrel.common.kafka.producer import OutRecord, Producer
    from kestrel.common.runtime.bindings import Topics

    topics = Topics(settings)
    binding = topics.bind(settings.lifecycle_topic)
    record = request(args.model, args.reason or f"requested by {_user()}", int(time.time() * 1000))
    value = await asyncio.to_thread(topics.serde(binding).serialize, record)
    producer = Producer(librdkafka_config(settings, **_QUIET), delivery_timeout_s=10.0)
    await producer.start()
    try:
        await producer.send(OutRecord(binding.name, value, args.model.encode()))
    except UnavailableError as exc:
        raise UnavailableError(f"{_unreachable(settings)}: {exc}") from exc
    finally:
        await producer.stop(timeout_s=1.0)
    return f"{args.model}: retraining requested ({record['reason']}); follow it with `{PROG} status`"


async def timeline(settings: RetrainTriggerSettings, args: argparse.Namespace) -> str:
    from kestrel.retrain_trigger import timeline as page
    from kestrel.retrain_trigger.timeline_db import read

    since_ms = int((time.time() - args.since_hours * 3600) * 1000)
    series, steps = await read(
        settings.postgres_dsn.get_secret_value(), args.model, since_ms, int(args.bucket_minutes * 60_000)
    )
    text = page.render_text(steps)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(page.render_html(args.model, series, steps))
        text += f"\npage: {args.output}"
    return text


def status(settings: RetrainTriggerSettings, model: str | None) -> str:
    runs = {k: v for k, v in read_runs(settings).items() if model is None or k == model}
    if not runs:
        return "no runs yet" if model is None else f"{model}: no runs yet"
    return "\n".join(
        ["model  step  outcome  run  champion -> challenger  started  why", *map(_line, sorted(runs.items()))]
    )


def read_runs(settings: RetrainTriggerSettings, timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """model -> its latest run, from the runs table's changelog (read from the start to its end offsets)."""
    import confluent_kafka

    from kestrel.common.kafka.config import librdkafka_config

    topic = f"{settings.topic_prefix}{settings.app_id}-runs-changelog"
    config = librdkafka_config(settings, **_QUIET, **{"group.id": PROG, "enable.auto.commit": False})
    config.pop("linger.ms", None)  # a producer property: librdkafka warns about it on a consumer
    consumer = confluent_kafka.Consumer(config)
    try:
        latest: dict[str, dict[str, Any]] = {}
        for key, value in _drain(consumer, topic, timeout_s):
            run = _entry(value).get("run")
            if run:
                latest[_key(key)] = run
        return latest
    except confluent_kafka.KafkaException as exc:
        raise UnavailableError(f"{_unreachable(settings)}: {exc.args[0].str()}") from exc
    finally:
        consumer.close()


def _entry(value: bytes) -> dict[str, Any]:
    """A runs-table value: faust writes the table's JSON text to the changelog as a JSON string."""
    doc = json.loads(value)
    return dict(json.loads(doc) if isinstance(doc, str) else doc)


def _key(key: bytes) -> str:
    """A runs-table key (model name), JSON-quoted by faust like the values."""
    text = key.decode()
    return str(json.loads(text)) if text.startswith('"') else text


def _drain(consumer: Any, topic: str, timeout_s: float) -> list[tuple[bytes, bytes]]:
    records = read_to_end(consumer, topic, timeout_s) or []  # no topic: the service has not run yet, no runs
    return [(key, value) for key, value in records if key is not None]


def _line(item: tuple[str, dict[str, Any]]) -> str:
    model, run = item
    started = datetime.fromtimestamp(run["started_ms"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    versions = f"{run.get('champion') or '-'} -> {run.get('challenger') or '-'}"
    return (
        f"{model}  {run['step']}  {run.get('outcome') or '-'}  {run['run_id']}  {versions}  {started}  {run['reason']}"
    )


def _unreachable(settings: RetrainTriggerSettings) -> str:
    return f"kafka not reachable at {settings.kafka_bootstrap} (KESTREL_KAFKA_BOOTSTRAP)"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"
