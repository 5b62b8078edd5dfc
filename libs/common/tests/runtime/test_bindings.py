"""Topic bindings come from the catalogue: prefixed names, declared schemas, a clear error for the undeclared."""

from __future__ import annotations

import pytest

from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import CatalogueError, load_catalogue


def topics(prefix: str = "") -> Topics:
    return Topics(KafkaSettings(topic_prefix=prefix), load_catalogue())


def test_binding_carries_the_prefixed_name_and_the_declared_schema() -> None:
    binding = topics("t-1.").bind("kestrel.events.v1")
    assert (binding.declared, binding.name, binding.value_schema) == (
        "kestrel.events.v1",
        "t-1.kestrel.events.v1",
        "event",
    )


def test_dead_letter_topic_of_a_service_is_bound_from_the_catalogue() -> None:
    binding = topics().dead_letters("feature-writer")
    assert binding.name == "kestrel.dlq.feature-writer.v1" and binding.value_schema == "dead_letter"


def test_an_undeclared_topic_is_refused_naming_the_catalogue() -> None:
    with pytest.raises(CatalogueError, match=r"'kestrel\.typo\.v1' is not declared in the topic catalogue"):
        topics().bind("kestrel.typo.v1")


def test_every_catalogue_topic_has_a_schema_a_serde_can_load() -> None:
    bound = topics()
    for spec in load_catalogue():
        serde = bound.serde(bound.bind(spec.name))
        assert serde is bound.serde(bound.bind(spec.name))  # one serde per topic
