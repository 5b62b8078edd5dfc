"""The feature values of a decoded Prediction or FeatureVector record, whichever way its writer carried them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kestrel.featureset.definition import FeatureSet


def record_features(record: Mapping[str, Any], feature_set: FeatureSet) -> list[float]:
    """Values in the feature set's vector order: the packed feature_values of current writers, or the by-name
    features map of records written before it. ValueError when the record is of another feature-set version
    or does not carry exactly the set's features (positions mean nothing then)."""
    if record["feature_set_version"] != feature_set.version_id:
        raise ValueError(f"record of {record['feature_set_version']}, not {feature_set.version_id}")
    names = feature_set.names
    values = record.get("feature_values") or []
    if values:
        if len(values) != len(names):
            raise ValueError(f"{len(values)} feature values, {feature_set.version_id} has {len(names)}")
        return list(values)
    by_name = record["features"]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"features missing from the record: {missing}")
    return [by_name[n] for n in names]
