"""The checked-in Triton entry infra/triton/models/kestrel_fraud matches the feature set and the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.model import TritonConfig, load
from kestrel.model.artifact import versions
from kestrel.model.repository import model_py

MODEL = Path(__file__).resolve().parents[3] / "infra" / "triton" / "models" / "kestrel_fraud"


def test_config_takes_one_input_per_feature_of_the_feature_set(feature_set):
    # Fails once the feature set changes width: retrain and publish (docs/model.md), never hand-edit dims.
    assert (MODEL / "config.pbtxt").read_text() == TritonConfig("kestrel_fraud", len(feature_set.names)).render()


def test_gpu_variant_differs_only_in_the_instance_kind(feature_set):
    expected = TritonConfig("kestrel_fraud", len(feature_set.names), kind="KIND_GPU").render()
    assert (MODEL / "configs" / "gpu.pbtxt").read_text() == expected


@pytest.mark.parametrize("version", versions(MODEL.parent, MODEL.name))
def test_every_version_runs_the_current_model_py_on_this_feature_set(version, feature_set):
    folder = MODEL / str(version)
    assert (folder / "model.py").read_bytes() == model_py(), "republish: model.py is stale"
    artifact = load(folder)
    assert artifact.feature_names == tuple(feature_set.names)
    assert artifact.feature_set_version == feature_set.version_id
    assert artifact.metrics["holdout"]["pr_auc"] > 0.8  # on simulator data; see docs/model.md


def test_the_champion_carries_its_reference_performance():
    """Without it the drift monitor draws no PR-AUC band, so PerformanceDegraded never fires on the stack."""
    performance = load(MODEL / "1").reference.performance
    assert performance is not None and performance.band("pr_auc") is not None
