"""The prediction-logger's wiring: predictions and labels from Kafka into PostgreSQL."""

from __future__ import annotations

import functools
from typing import Any

from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.consumer import batch_consumer, producer
from kestrel.prediction_logger.handler import LogBatchHandler
from kestrel.prediction_logger.settings import PredictionLoggerSettings
from kestrel.prediction_logger.store import PartitionKeeper, PostgresStore


def components(rt: Runtime[PredictionLoggerSettings]) -> list[Any]:
    """Producer (dead letters), PostgreSQL and its partitions, then the consumer: intake starts last and stops
    first, committing."""
    s = rt.settings
    assert rt.topics is not None
    inputs = {"predictions": rt.topics.bind(s.predictions_topic), "labels": rt.topics.bind(s.labels_topic)}
    tables = {
        b.name: (table, functools.partial(rt.topics.serde(b).deserialize_many, errors="return"))
        for table, b in inputs.items()
    }
    store = PostgresStore(s.postgres_dsn.get_secret_value(), s.postgres_timeout_s)
    handler = LogBatchHandler(tables, store)
    rt.ready_when(handler.postgres.ready)  # PostgreSQL down: not ready; batches wait
    keeper = PartitionKeeper(store, s.partitions_ahead, s.retention_days, s.maintenance_interval_s)
    out = producer(rt)
    return [out, store, keeper, batch_consumer(rt, list(inputs.values()), s.group_id, handler, out)]
