"""Feature definitions: the card set loads, drives the vector order, and cannot change without a version bump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kestrel.common.avro import read_schema
from kestrel.featureset import FeatureDefinitionError, FeatureSpec, load_feature_set, parse_feature_set
from kestrel.featureset.definition import CATEGORICAL_SOURCE, NUMERIC_SOURCE
from kestrel.featureset.loader import find_features_dir


def card_document() -> dict:
    return yaml.safe_load((find_features_dir() / "card.yaml").read_text())


def write(tmp_path: Path, document: dict) -> Path:
    (tmp_path / f"{document['name']}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


def test_card_set_declares_the_windows_the_issue_asks_for() -> None:
    fs = load_feature_set("card")
    assert fs.version_id == f"card.v{fs.version}"
    windows = {(f.aggregation, f.window_s) for f in fs.features}
    for agg in ("count", "sum", "mean", "std", "max"):
        assert {(agg, 60), (agg, 3600), (agg, 86400)} <= windows
    assert {f.aggregation for f in fs.features} >= {"seconds_since_previous", "distinct", "ratio_to_mean"}
    assert {f.source for f in fs.features if f.aggregation == "distinct"} >= {"merchant_id", "country"}


def test_vector_order_defaults_and_index_follow_the_file() -> None:
    fs = load_feature_set()
    declared = [entry["name"] for entry in card_document()["features"]]
    assert fs.names == declared
    assert fs.defaults == [float(entry["default"]) for entry in card_document()["features"]]
    assert all(fs.index[name] == i for i, name in enumerate(declared))
    assert fs["amount"].source == "amount"


def test_every_source_is_an_event_field_of_the_right_type() -> None:
    fields = {f["name"]: f["type"] for f in read_schema("event")["fields"]}
    fs = load_feature_set()
    for f in fs.features:
        assert f.source in fields, f.name
        if f.aggregation in NUMERIC_SOURCE:
            assert fields[f.source] in ("double", "float", "long", "int"), f.name
        if f.aggregation in CATEGORICAL_SOURCE:
            assert fields[f.source] == "string", f.name
    assert fs.entity in fields and fs.time in fields


def test_changing_a_definition_without_a_version_bump_fails(tmp_path: Path) -> None:
    doc = card_document()
    doc["features"][2]["window_s"] = 120
    with pytest.raises(FeatureDefinitionError, match="bump|version: 2"):
        load_feature_set("card", write(tmp_path, doc))


def test_a_bumped_version_with_its_fingerprint_loads(tmp_path: Path) -> None:
    doc = card_document()
    doc["features"].append(
        {
            "name": "amount_min_24h",
            "dtype": "float",
            "default": 0.0,
            "source": "amount",
            "aggregation": "min",
            "window_s": 86400,
        }
    )
    fingerprint = parse_feature_set(doc).fingerprint()
    doc["version"] = 2
    doc["fingerprints"][2] = fingerprint
    fs = load_feature_set("card", write(tmp_path, doc))
    assert fs.version_id == "card.v2" and fs.names[-1] == "amount_min_24h"


def test_descriptions_are_not_part_of_the_fingerprint(tmp_path: Path) -> None:
    doc = card_document()
    doc["features"][0]["description"] = "reworded"
    assert load_feature_set("card", write(tmp_path, doc)).fingerprint() == load_feature_set().fingerprint()


def test_a_version_bump_without_a_change_is_refused(tmp_path: Path) -> None:
    doc = card_document()
    doc["version"] = 2
    doc["fingerprints"][2] = doc["fingerprints"][1]
    with pytest.raises(FeatureDefinitionError, match="share fingerprint"):
        load_feature_set("card", write(tmp_path, doc))


def test_fingerprint_covers_order_and_set_level_settings() -> None:
    doc = card_document()
    base = parse_feature_set(doc).fingerprint()
    swapped = {**doc, "features": [doc["features"][1], doc["features"][0], *doc["features"][2:]]}
    assert parse_feature_set(swapped).fingerprint() != base
    assert parse_feature_set({**doc, "allowed_lateness_s": 1}).fingerprint() != base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aggregation": "median"}, "unknown aggregation"),
        ({"aggregation": "sum", "window_s": None}, "needs a positive window_s"),
        ({"aggregation": "value", "window_s": 60}, "takes no window_s"),
        ({"name": "bad name"}, "identifier"),
        ({"dtype": "string"}, "dtype"),
    ],
)
def test_bad_specs_name_the_feature_and_the_problem(change: dict, message: str) -> None:
    spec = {
        "name": "f",
        "dtype": "float",
        "default": 0.0,
        "source": "amount",
        "aggregation": "value",
        "window_s": None,
    } | change
    with pytest.raises(FeatureDefinitionError, match=message):
        FeatureSpec(**spec)


def test_duplicate_names_and_unknown_keys_are_refused() -> None:
    doc = card_document()
    with pytest.raises(FeatureDefinitionError, match="declared twice"):
        parse_feature_set({**doc, "features": doc["features"] + doc["features"][:1]})
    with pytest.raises(FeatureDefinitionError, match="unknown keys"):
        parse_feature_set({**doc, "features": [{**doc["features"][0], "windo_s": 3}]})
    with pytest.raises(FeatureDefinitionError, match="lacks 'version'"):
        parse_feature_set({k: v for k, v in doc.items() if k != "version"})


def test_file_must_be_named_after_its_set(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(json.dumps(card_document()))
    with pytest.raises(FeatureDefinitionError, match="name the file after it"):
        load_feature_set("other", tmp_path)


def test_features_dir_can_be_pointed_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_FEATURES_DIR", str(tmp_path))
    assert find_features_dir() == tmp_path
