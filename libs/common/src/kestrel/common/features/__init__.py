"""Feature definitions, the per-entity streaming state and the offline recomputation that checks it."""

from kestrel.common.features.definition import FeatureDefinitionError, FeatureSet, FeatureSpec, parse_feature_set
from kestrel.common.features.loader import find_features_dir, load_feature_set

__all__ = ["FeatureDefinitionError", "FeatureSet", "FeatureSpec", "find_features_dir", "load_feature_set",
           "parse_feature_set"]
