"""Whether a decoded FeatureVector record carries exactly its feature set's features (writer and scorer)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class VectorCheck:
    """Vectors of the known feature-set version must carry exactly its features; other versions pass (the
    writer stores them: during a rollout it may be older or newer than the features service; the stream
    scorer rejects them on its own, as its model takes one version)."""

    def __init__(self, version: str | None = None, names: Iterable[str] = ()) -> None:
        self.version = version
        self._names = frozenset(names)

    def problem(self, record: dict[str, Any]) -> str | None:
        if record["feature_set_version"] != self.version or record["features"].keys() == self._names:
            return None
        missing = sorted(self._names - record["features"].keys())
        extra = sorted(record["features"].keys() - self._names)
        return f"features do not match {self.version}: missing {missing}, unexpected {extra}"
