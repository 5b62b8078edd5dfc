"""Whether a decoded FeatureVector record carries exactly its feature set's features (writer and scorer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class VectorCheck:
    """Vectors of the known feature-set version must carry exactly its features, by name (older writers) or
    packed (as many values as it has features). Other versions pass when they carry their names (the writer
    stores them: during a rollout it may be older or newer than the features service; the stream scorer
    rejects them on its own, as its model takes one version); packed, their values mean nothing without
    that version's definition, so they are refused."""

    def __init__(self, version: str | None = None, names: Iterable[str] = ()) -> None:
        self.version = version
        self.names = list(names)
        self._names = frozenset(self.names)

    def problem(self, record: Mapping[str, Any]) -> str | None:
        packed = record.get("feature_values") or ()
        if record["feature_set_version"] != self.version:
            if packed:
                return (
                    f"packed vector of {record['feature_set_version']}: this reader knows the feature names of "
                    f"{self.version} only; replay it to one of that version"
                )
            return None
        if packed:
            if len(packed) == len(self.names):
                return None
            return f"{len(packed)} feature values, {self.version} has {len(self.names)}"
        if record["features"].keys() == self._names:
            return None
        missing = sorted(self._names - record["features"].keys())
        extra = sorted(record["features"].keys() - self._names)
        return f"features do not match {self.version}: missing {missing}, unexpected {extra}"

    def by_name(self, record: Mapping[str, Any]) -> Mapping[str, float]:
        """The features of a record that passed the check, by name, however it carried them."""
        packed = record.get("feature_values")
        return dict(zip(self.names, packed)) if packed else record["features"]
