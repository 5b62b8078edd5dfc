"""Feature definitions, the per-entity streaming state and the offline recomputation that checks it."""

from kestrel.featureset.definition import FeatureDefinitionError, FeatureSet, FeatureSpec, parse_feature_set
from kestrel.featureset.loader import find_features_dir, load_feature_set

__all__ = [
    "FeatureDefinitionError",
    "FeatureSet",
    "FeatureSpec",
    "find_features_dir",
    "load_feature_set",
    "parse_feature_set",
]
