"""Load a feature set from infra/features/<name>.yaml and check its version lock."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

from kestrel.featureset.definition import FeatureDefinitionError, FeatureSet, parse_feature_set

FEATURES_DIR_ENV = "KESTREL_FEATURES_DIR"
_RELATIVE_DIR = Path("infra") / "features"


def find_features_dir(start: Path | None = None) -> Path:
    """$KESTREL_FEATURES_DIR, else infra/features in the nearest enclosing repository checkout."""
    if env := os.environ.get(FEATURES_DIR_ENV):
        return Path(env)
    origins = [start or Path.cwd(), Path(__file__).resolve()]
    for origin in origins:
        for folder in [origin, *origin.parents]:
            if (folder / _RELATIVE_DIR).is_dir():
                return folder / _RELATIVE_DIR
    raise FeatureDefinitionError(f"no {_RELATIVE_DIR} above {origins[0]}; set {FEATURES_DIR_ENV}")


def load_feature_set(name: str = "card", directory: Path | str | None = None) -> FeatureSet:
    """The feature set `name`, validated and version-locked; cached per file, so treat it as shared."""
    folder = Path(directory) if directory is not None else find_features_dir()
    return _load(str((folder / f"{name}.yaml").resolve()))


@lru_cache(maxsize=32)
def _load(path: str) -> FeatureSet:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FeatureDefinitionError(f"cannot read feature set {path}: {exc}") from exc
    feature_set = parse_feature_set(document)
    if Path(path).stem != feature_set.name:
        raise FeatureDefinitionError(f"{path} declares feature set {feature_set.name!r}; name the file after it")
    feature_set.check_locked()
    return feature_set
