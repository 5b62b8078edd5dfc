"""The read API's pure part: logged feature maps to a dense matrix."""

from __future__ import annotations

from kestrel.prediction_logger.read import matrix


def test_feature_maps_become_a_matrix_over_the_union_of_names() -> None:
    m = matrix(["a", "b"], ['{"x":1.0,"y":null}', {"z": 3.0}], [0.1, 0.2])
    assert m.names == ["x", "y", "z"]
    assert m.features == [[1.0, None, None], [None, None, 3.0]]
    assert (m.ids, m.column) == (["a", "b"], [0.1, 0.2])
