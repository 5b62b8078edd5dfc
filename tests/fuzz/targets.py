"""Every consumer of a topic, as a fuzz target: its service started in-process, its valid record and its effect."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import asyncpg

from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.devstack.topics import PrefixedTopics

from . import records as r
from . import starters
from .feed import TopicTarget
from .starters import Endpoints

Effect = Callable[[Endpoints, PrefixedTopics, dict[str, Any]], Any]


async def found_in_topic(topics: PrefixedTopics, topic: str, schema: str, event_id: str) -> bool:
    serde = serde_for_topic(FileSchemaRegistry(), topics.name(topic), schema)
    try:
        records = await topics.read(topics.name(topic), 1, timeout_s=30)
    except TimeoutError:
        return False
    return any(serde.deserialize(record.value)["event_id"] == event_id for record in records)


async def vector_out(ep: Endpoints, topics: PrefixedTopics, record: dict[str, Any]) -> bool:
    return await found_in_topic(topics, "kestrel.features.v1", "feature_vector", record["event_id"])


async def prediction_out(ep: Endpoints, topics: PrefixedTopics, record: dict[str, Any]) -> bool:
    return await found_in_topic(topics, "kestrel.predictions.v1", "prediction", record["event_id"])


async def vector_written(ep: Endpoints, topics: PrefixedTopics, record: dict[str, Any]) -> bool:
    from kestrel.online_store import redis_client

    client = redis_client(ep.redis_url)
    try:
        return bool([k async for k in client.scan_iter(match=f"{topics.key_prefix}:*{record['entity_id']}*")])
    finally:
        await client.aclose()


async def in_table(table: str, ep: Endpoints, topics: PrefixedTopics, record: dict[str, Any]) -> bool:
    conn = await asyncpg.connect(ep.dsn)
    try:
        return bool(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE event_id = $1", record["event_id"]))
    finally:
        await conn.close()


async def committed(ep: Endpoints, topics: PrefixedTopics, record: dict[str, Any]) -> bool:
    return True  # reports and alerts need hours of traffic: the group committing past it, undead-lettered, is it


def group(prefix: str = "g-", app_id: str = "") -> Callable[[PrefixedTopics], str]:
    """The consumer group a target's service commits in: ours (`g-<prefix>`) or a faust app's (`<prefix><id>`)."""
    return lambda topics: f"{topics.prefix}{app_id}" if app_id else f"{prefix}{topics.prefix}"


# name, topic, schema, dead-letter service, group, starter, valid record, its effect, must reject, foreign schema
_TABLE: list[tuple[Any, ...]] = [
    ("events -> features", "kestrel.events.v1", "event", "features", group(), starters.features,
     r.valid_sentinel_event, vector_out, r.invalid_event, "label"),
    ("events -> drift-monitor", "kestrel.events.v1", "event", "drift-monitor", group("ge-"), starters.drift_monitor,
     r.valid_sentinel_event, committed, r.unwindowable, "label"),
    ("features -> feature-writer", "kestrel.features.v1", "feature_vector", "feature-writer", group(),
     starters.feature_writer, r.valid_vector, vector_written, None, "label"),
    ("features -> inference-scorer", "kestrel.features.v1", "feature_vector", "inference", group(),
     starters.inference_scorer, r.valid_vector, prediction_out, None, "label"),
    ("predictions -> prediction-logger", "kestrel.predictions.v1", "prediction", "prediction-logger", group(),
     starters.prediction_logger, r.valid_prediction, functools.partial(in_table, "predictions"), None, "label"),
    ("labels -> prediction-logger", "kestrel.labels.v1", "label", "prediction-logger", group(),
     starters.prediction_logger, r.valid_label, functools.partial(in_table, "labels"), None, "prediction"),
    ("predictions -> drift-monitor", "kestrel.predictions.v1", "prediction", "drift-monitor", group(),
     starters.drift_monitor, r.valid_prediction, committed, r.unwindowable, "label"),
    ("drift-reports -> alerting", "kestrel.drift-reports.v1", "drift_report", "alerting",
     group(app_id="kestrel-alerting"), starters.alerting, r.valid_report, committed, None, "label"),
    ("alerts -> retrain-trigger", "kestrel.alerts.v1", "alert", "retrain-trigger",
     group(app_id="kestrel-retrain-trigger"), starters.retrain_trigger, r.valid_alert, committed, None, "label"),
]  # fmt: skip

NAMES = [row[0] for row in _TABLE]


def target(name: str, ep: Endpoints) -> TopicTarget:
    """The target of that name on these servers."""
    name, topic, schema, service, grp, start, valid, effect, reject, foreign = next(t for t in _TABLE if t[0] == name)
    return TopicTarget(
        name,
        topic,
        schema,
        service,
        grp,
        functools.partial(start, ep),
        valid,
        functools.partial(effect, ep),
        reject or (lambda record: False),
        foreign,
    )
