"""The topic catalogue loader: infra/topics.yaml parses, and bad catalogues fail with a clear CatalogueError."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.common.topics import (
    CatalogueError,
    TopicCatalogue,
    TopicSpec,
    dead_letter_topic,
    find_topics_file,
    load_catalogue,
    min_insync_for,
    parse_catalogue,
)

DLQ_SERVICES = [
    "ingest", "features", "feature-writer", "inference",
    "prediction-logger", "drift-monitor", "alerting", "retrain-trigger",
]  # fmt: skip
FOURTEEN_DAYS_MS = str(14 * 24 * 3600 * 1000)


def entry(**overrides: object) -> dict[str, object]:
    return {"name": "t.a", "key": "k", "value_schema": "event.avsc", "partitions": 2, **overrides}


def test_repository_catalogue_declares_the_documented_topics() -> None:
    catalogue = load_catalogue()
    for name in ("kestrel.events.v1", "kestrel.features.v1", "kestrel.predictions.v1", "kestrel.labels.v1"):
        assert catalogue[name].partitions == 6
        assert catalogue[name].key == "entity_id"
    assert catalogue["kestrel.predictions.v1"].value_schema == "prediction.avsc"
    for name in ("kestrel.drift-reports.v1", "kestrel.alerts.v1", "kestrel.model-lifecycle.v1"):
        assert 1 <= catalogue[name].partitions <= 3


def test_every_consuming_service_has_a_dead_letter_topic_kept_14_days() -> None:
    catalogue = load_catalogue()
    for service in DLQ_SERVICES:
        spec = catalogue[dead_letter_topic(service)]
        assert spec.value_schema == "dead_letter.avsc"
        assert spec.config["retention.ms"] == FOURTEEN_DAYS_MS


def test_every_value_schema_exists_in_schemas() -> None:
    schemas = find_topics_file().parents[1] / "schemas"
    for spec in load_catalogue():
        assert (schemas / spec.value_schema).is_file(), spec.name


def test_every_topic_tolerates_one_broker_down_without_losing_acknowledged_records() -> None:
    for spec in load_catalogue():
        assert spec.replication_factor >= 3, spec.name
        assert 2 <= spec.min_insync_replicas < spec.replication_factor, spec.name
        assert spec.broker_config(spec.replication_factor)["min.insync.replicas"] == str(spec.min_insync_replicas)


@pytest.mark.parametrize(
    ("replication", "declared", "expected"),
    [(3, (3, 2), 2), (2, (3, 2), 1), (1, (3, 2), 1), (1, (3, 3), 1), (2, (3, 3), 2), (5, (5, 3), 3), (4, (3, 2), 3)],
)
def test_min_insync_drops_with_capped_replication_keeping_the_failures_tolerated(
    replication: int, declared: tuple[int, int], expected: int
) -> None:
    assert min_insync_for(replication, *declared) == expected


def test_min_insync_is_a_catalogue_field_applied_as_a_config() -> None:
    spec = parse_catalogue({"topics": [entry(replication_factor=3, min_insync_replicas=2, config={"a": 1})]})["t.a"]
    assert dict(spec.config) == {"a": "1"}
    assert spec.broker_config(1) == {"a": "1", "min.insync.replicas": "1"}
    assert parse_catalogue({"topics": [entry()]})["t.a"].broker_config(1)["min.insync.replicas"] == "1"


def test_config_values_become_strings() -> None:
    catalogue = parse_catalogue({"topics": [entry(config={"retention.ms": 1000, "preallocate": False})]})
    assert dict(catalogue["t.a"].config) == {"retention.ms": "1000", "preallocate": "false"}


def test_prefix_renames_every_topic_and_keeps_the_rest() -> None:
    catalogue = parse_catalogue({"topics": [entry(), entry(name="t.b", partitions=5)]})
    prefixed = catalogue.with_prefix("test-")
    assert prefixed.names == ["test-t.a", "test-t.b"]
    assert prefixed["test-t.b"].partitions == 5


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "non-empty `topics:`"),
        ({"topics": [entry(partitions=0)]}, "must be >= 1"),
        ({"topics": [entry(name="bad name!")]}, "illegal topic name"),
        ({"topics": [entry(), entry()]}, "declared twice"),
        ({"topics": [{"name": "t.a", "partitions": 1}]}, "lacks 'key'"),
        ({"topics": [entry(partitions="many")]}, "t.a"),
        ({"topics": [entry(config={"x": [1]})]}, "scalars"),
        ({"topics": [entry(replication_factor=2, min_insync_replicas=3)]}, "between 1 and replication_factor"),
        ({"topics": [entry(min_insync_replicas=0)]}, "between 1 and replication_factor"),
        ({"topics": [entry(config={"min.insync.replicas": 2})]}, "beside replication_factor"),
    ],
)
def test_invalid_catalogues_are_rejected(document: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(document)


def test_env_var_overrides_the_catalogue_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "topics.yaml"
    custom.write_text("topics:\n  - {name: only.one, key: k, value_schema: e.avsc, partitions: 1}\n")
    monkeypatch.setenv("KESTREL_TOPICS_FILE", str(custom))
    assert load_catalogue().names == ["only.one"]


def test_unknown_topic_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        TopicCatalogue((TopicSpec("a", "k", "v.avsc", 1),))["b"]
