"""Artifacts: save/load round trip, immutability, reference statistics, publishing into a Triton repository."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kestrel.model import (
    ModelError,
    TrainConfig,
    TritonConfig,
    build,
    from_events,
    load,
    next_version,
    publish_to_repository,
    save,
    train,
)
from kestrel.model.learners import MLPConfig
from kestrel.model.reference import Binning, shares
from kestrel.model.repository import model_py, pin_versions, write_config


@pytest.fixture(scope="module")
def artifact(synthetic):
    result = train(synthetic, TrainConfig(mlp=MLPConfig(epochs=5)))
    return build(result, synthetic, "kestrel_fraud", 1)


def test_round_trip_keeps_scores_metrics_and_references(artifact, synthetic, tmp_path):
    path = save(artifact, tmp_path)
    assert path == tmp_path / "kestrel_fraud" / "1"
    again = load(path)
    assert np.array_equal(again.predict(synthetic.X), artifact.predict(synthetic.X))
    assert again.manifest() == artifact.manifest() and again.metrics == artifact.metrics
    assert np.array_equal(again.reference.sample, artifact.reference.sample)
    assert np.array_equal(again.reference.sample_scores, artifact.reference.sample_scores)
    for a, b in zip(again.reference.features, artifact.reference.features):
        assert np.array_equal(a.edges, b.edges) and np.array_equal(a.proportions, b.proportions)


def test_manifest_names_the_feature_set_and_its_vector_order(artifact, feature_set):
    manifest = artifact.manifest()
    assert manifest["feature_set_version"] == feature_set.version_id == "card.v1"
    assert manifest["feature_names"] == feature_set.names
    assert manifest["kind"] == "mlp" and manifest["training"]["rows"] == 20_000


def test_versions_are_immutable(artifact, tmp_path):
    save(artifact, tmp_path)
    with pytest.raises(ModelError, match="immutable, save as version 2"):
        save(artifact, tmp_path)
    assert next_version(tmp_path, "kestrel_fraud") == 2 and next_version(tmp_path, "other") == 1


def test_reference_has_decile_bins_a_row_sample_and_their_scores(artifact, synthetic):
    ref = artifact.reference
    assert ref.sample.shape == (10_000, len(synthetic.feature_names)) and ref.sample.dtype == np.float32
    assert np.allclose(ref.sample_scores, artifact.predict(ref.sample.astype(np.float64)), atol=1e-5)
    amount = ref.features[synthetic.feature_names.index("amount")]
    assert len(amount.edges) == 9 and np.allclose(amount.proportions, 0.1, atol=0.01)
    flag = ref.features[synthetic.feature_names.index("country_new_24h")]
    assert flag.proportions.sum() == pytest.approx(1.0) and len(flag.edges) <= 2  # discrete: merged edges


def test_reference_performance_is_saved_with_the_artifact(artifact, tmp_path):
    again = load(save(artifact, tmp_path)).reference.performance
    assert again is not None and artifact.reference.performance is not None
    assert json.dumps(again.to_json()) == json.dumps(artifact.reference.performance.to_json())


def test_an_artifact_saved_before_reference_performance_still_loads(artifact, tmp_path):
    path = save(artifact, tmp_path)
    doc = json.loads((path / "reference.json").read_text())
    del doc["performance"]
    (path / "reference.json").write_text(json.dumps(doc))
    old = load(path)
    assert old.reference.performance is None and old.reference.feature_names == artifact.feature_names


def test_live_shares_use_the_reference_bin_rule():
    binning = Binning.fit(np.arange(100.0), bins=4)
    assert binning.edges.tolist() == [24.75, 49.5, 74.25]
    assert shares(np.array([-1.0, 24.75, 50.0, 99.0, 1e9]), binning.edges).tolist() == [0.2, 0.2, 0.2, 0.4]


def test_publish_writes_a_version_triton_can_load_and_artifact_load_reads(artifact, tmp_path):
    version_dir = publish_to_repository(artifact, tmp_path)
    assert version_dir == tmp_path / "kestrel_fraud" / "1"
    assert (version_dir / "model.py").read_bytes() == model_py()
    assert load(version_dir).manifest() == artifact.manifest()
    config = (tmp_path / "kestrel_fraud" / "config.pbtxt").read_text()
    assert config == TritonConfig("kestrel_fraud", len(artifact.feature_names)).render()
    assert not [p for p in version_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_publish_under_another_name_keeps_an_existing_config_and_checks_its_width(artifact, tmp_path):
    tuned = TritonConfig("challenger", len(artifact.feature_names), instances=2)
    write_config(tmp_path / "challenger", tuned)
    publish_to_repository(artifact, tmp_path, "challenger")
    assert (tmp_path / "challenger" / "config.pbtxt").read_text() == tuned.render()
    assert json.loads((tmp_path / "challenger" / "1" / "manifest.json").read_text())["model_name"] == "challenger"
    write_config(tmp_path / "narrow", TritonConfig("narrow", 3), variant="gpu")
    with pytest.raises(ModelError, match="takes 3 features"):
        publish_to_repository(artifact, tmp_path, "narrow")


def test_pinning_versions_rewrites_the_version_policy(tmp_path):
    config = TritonConfig("m", 4)
    pin_versions(tmp_path, config, (3, 1))
    assert "version_policy: { specific: { versions: [ 3, 1 ] } }" in (tmp_path / "m" / "config.pbtxt").read_text()


def test_from_events_joins_labels_and_orders_by_event_time(feature_set):
    base = {
        "amount": 10.0,
        "currency": "EUR",
        "merchant_id": "m1",
        "merchant_category": "5411",
        "country": "DE",
        "channel": "pos",
        "attributes": {},
    }
    events = [
        {**base, "event_id": f"e{i}", "entity_id": f"c{i % 2}", "event_time": 1_000_000 + 1000 * i} for i in range(6)
    ]
    labels = [
        {"event_id": "e1", "label": 0},
        {"event_id": "e4", "label": 1},
        {"event_id": "e1", "label": 1},
        {"event_id": "e5", "label": 0},
    ]
    data = from_events(events, labels, feature_set)
    assert data.y.tolist() == [1, 1, 0]  # e1 (relabelled), e4, e5; unlabelled events left out
    assert data.X[:, feature_set.index["txn_count_1m"]].tolist() == [1.0, 3.0, 3.0]
