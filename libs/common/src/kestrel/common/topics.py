"""The Kafka topic catalogue (infra/topics.yaml) as plain dataclasses; no broker I/O here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from kestrel.common.errors import KestrelError

TOPICS_FILE_ENV = "KESTREL_TOPICS_FILE"
_RELATIVE_PATH = Path("infra") / "topics.yaml"
_LEGAL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
MIN_ISR = "min.insync.replicas"


class CatalogueError(KestrelError, ValueError):
    """The topic catalogue is missing or does not describe valid topics."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as declared: partitions and configs are what the tooling applies to the broker."""

    name: str
    key: str
    value_schema: str
    partitions: int
    replication_factor: int = 1
    min_insync_replicas: int = 1
    """Replicas that must hold a record before an acks=all producer gets its ack (Kafka's min.insync.replicas)."""
    config: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not _LEGAL_NAME.match(self.name):
            raise CatalogueError(f"illegal topic name {self.name!r}")
        if self.partitions < 1 or self.replication_factor < 1:
            raise CatalogueError(f"{self.name}: partitions and replication_factor must be >= 1")
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise CatalogueError(f"{self.name}: min_insync_replicas must be between 1 and replication_factor")
        if MIN_ISR in self.config:
            raise CatalogueError(f"{self.name}: declare min_insync_replicas beside replication_factor, not in config")
        object.__setattr__(self, "config", MappingProxyType({k: _config_value(v) for k, v in self.config.items()}))

    def broker_config(self, replication: int) -> dict[str, str]:
        """The configs to apply to this topic when it has `replication` replicas (see min_insync_for)."""
        min_isr = min_insync_for(replication, self.replication_factor, self.min_insync_replicas)
        return {**self.config, MIN_ISR: str(min_isr)}


@dataclass(frozen=True)
class TopicCatalogue:
    """All declared topics, in file order; look one up with `catalogue["kestrel.events.v1"]`."""

    topics: tuple[TopicSpec, ...]

    def __post_init__(self) -> None:
        names = [t.name for t in self.topics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CatalogueError(f"topics declared twice: {', '.join(duplicates)}")

    def __iter__(self) -> Iterator[TopicSpec]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def __getitem__(self, name: str) -> TopicSpec:
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    def with_prefix(self, prefix: str) -> TopicCatalogue:
        """The same topics under prefixed names: isolated copies for tests or tenants."""
        return TopicCatalogue(tuple(replace(t, name=prefix + t.name) for t in self.topics))


def min_insync_for(replication: int, replication_factor: int, min_insync_replicas: int) -> int:
    """min.insync.replicas for a topic that got `replication` replicas where `replication_factor` was declared.

    A cluster smaller than the declaration caps replication; the minimum drops by as much, so as many brokers
    may be down without stopping writes as declared (3/2 -> 2/1 -> 1/1), and it never exceeds the replicas
    there are (a 1-broker stack with min ISR 2 would refuse every acks=all write).
    """
    return max(1, replication - (replication_factor - min_insync_replicas))


def dead_letter_topic(service: str) -> str:
    """Name of a consuming service's dead-letter topic, e.g. `kestrel.dlq.ingest.v1`."""
    return f"kestrel.dlq.{service}.v1"


def parse_catalogue(document: Mapping[str, Any]) -> TopicCatalogue:
    """Build the catalogue from the parsed YAML document."""
    entries = document.get("topics") if isinstance(document, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise CatalogueError("the catalogue needs a non-empty `topics:` list")
    return TopicCatalogue(tuple(_topic(entry) for entry in entries))


def load_catalogue(path: Path | str | None = None) -> TopicCatalogue:
    """Read infra/topics.yaml (or `path`); see find_topics_file for how it is located."""
    source = Path(path) if path is not None else find_topics_file()
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read topic catalogue {source}: {exc}") from exc
    return parse_catalogue(document)


def find_topics_file(start: Path | None = None) -> Path:
    """$KESTREL_TOPICS_FILE, else infra/topics.yaml in the nearest enclosing repository checkout."""
    if env := os.environ.get(TOPICS_FILE_ENV):
        return Path(env)
    origins = [start or Path.cwd(), Path(__file__).resolve()]
    for origin in origins:
        for folder in [origin, *origin.parents]:
            if (folder / _RELATIVE_PATH).is_file():
                return folder / _RELATIVE_PATH
    raise CatalogueError(f"no {_RELATIVE_PATH} above {origins[0]}; set {TOPICS_FILE_ENV}")


def _topic(entry: Any) -> TopicSpec:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"topic entry must be a mapping, got {entry!r}")
    try:
        return TopicSpec(
            name=str(entry["name"]),
            key=str(entry["key"]),
            value_schema=str(entry["value_schema"]),
            partitions=int(entry["partitions"]),
            replication_factor=int(entry.get("replication_factor", 1)),
            min_insync_replicas=int(entry.get("min_insync_replicas", 1)),
            config=dict(entry.get("config") or {}),
        )
    except CatalogueError:
        raise
    except KeyError as exc:
        raise CatalogueError(f"topic {entry.get('name', '?')!r} lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise CatalogueError(f"topic {entry.get('name', '?')!r}: {exc}") from exc


def _config_value(value: Any) -> str:
    """Kafka configs are strings on the wire; YAML gives ints and bools."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return str(value)
    raise CatalogueError(f"config values must be scalars, got {value!r}")
