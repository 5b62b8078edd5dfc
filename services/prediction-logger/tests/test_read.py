"""The read API's pure part: logged feature maps and packed vectors to a dense matrix."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kestrel.prediction_logger.read import matrix


def logged(features: Any = None, values: list[float] | None = None, version: str = "t.v1") -> dict[str, Any]:
    return {"feature_set_version": version, "features": features, "feature_values": values}


def test_feature_maps_become_a_matrix_over_the_union_of_names() -> None:
    m = matrix(["a", "b"], [logged('{"y":null,"x":1.0}'), logged({"z": 3.0})], [0.1, 0.2])
    assert m.names == ["x", "y", "z"]
    assert m.features == [[1.0, None, None], [None, None, 3.0]]
    assert (m.ids, m.column) == (["a", "b"], [0.1, 0.2])


def test_packed_rows_take_their_names_from_the_feature_set_and_mix_with_old_maps() -> None:
    rows = [logged(values=[1.0, math.nan]), logged('{"y":2.0,"x":3.0}'), logged(values=[5.0], version="t.v2")]
    m = matrix(["a", "b", "c"], rows, [0, 1, 0], {"t.v1": ["y", "x"], "t.v2": ["z"]})
    assert m.names == ["y", "x", "z"]  # definition order of the first packed row's set
    assert m.features == [[1.0, None, None], [2.0, 3.0, None], [None, None, 5.0]]


def test_packed_rows_without_their_names_are_refused() -> None:
    with pytest.raises(ValueError, match="t.v1"):
        matrix(["a"], [logged(values=[1.0])], [0])
    with pytest.raises(ValueError, match="t.v1"):
        matrix(["a"], [logged(values=[1.0])], [0], {"t.v1": ["x", "y"]})
