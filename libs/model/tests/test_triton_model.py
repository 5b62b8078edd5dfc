"""The Python-backend model outside Triton: same numbers as the training code, one pass per dynamic batch."""

from __future__ import annotations

import json
import types
from itertools import pairwise

import numpy as np
import pytest

from kestrel.model import TrainConfig, build, publish_to_repository, train, triton_model
from kestrel.model.learners import MLPConfig


@pytest.fixture(scope="module", params=["logreg", "mlp"])
def published(request, synthetic, tmp_path_factory):
    result = train(synthetic, TrainConfig(kind=request.param, mlp=MLPConfig(epochs=3)))
    artifact = build(result, synthetic, "m", 1)
    return artifact, publish_to_repository(artifact, tmp_path_factory.mktemp("repo"))


class _FakeTriton:
    """Just enough of triton_python_backend_utils to drive execute() and count scorer passes."""

    def __init__(self) -> None:
        self.Logger = types.SimpleNamespace(log_info=lambda message: None)

    @staticmethod
    def get_input_tensor_by_name(request, name):
        return types.SimpleNamespace(as_numpy=lambda: request[name])

    @staticmethod
    def Tensor(name, array):
        return (name, array)

    @staticmethod
    def InferenceResponse(output_tensors):
        return output_tensors


def test_scorer_matches_the_training_network(published, synthetic):
    artifact, version_dir = published
    x = synthetic.X[:2000].astype(np.float32)
    scores = triton_model.Scorer.from_dir(str(version_dir))(x)
    assert scores.shape == (2000, 1) and scores.dtype == np.float32
    assert np.abs(scores[:, 0] - artifact.predict(x)).max() < 1e-6


def test_execute_scores_every_request_of_a_batch_in_one_pass(published, synthetic, monkeypatch):
    _, version_dir = published
    monkeypatch.setattr(triton_model, "pb_utils", _FakeTriton())
    model = triton_model.TritonPythonModel()
    config = {"input": [{"name": "FEATURES", "dims": [len(synthetic.feature_names)]}]}
    model.initialize(
        {
            "model_repository": str(version_dir.parent),
            "model_version": "1",
            "model_name": "m",
            "model_config": json.dumps(config),
        }
    )
    calls = []
    scorer = model.scorer
    model.scorer = lambda rows: calls.append(len(rows)) or scorer(rows)
    sizes = [1, 5, 1, 64]
    bounds = np.cumsum([0, *sizes])
    x = synthetic.X[: bounds[-1]].astype(np.float32)
    responses = model.execute([{"FEATURES": x[a:b]} for a, b in pairwise(bounds)])
    assert calls == [sum(sizes)]
    for (name, part), a, b in zip((r[0] for r in responses), bounds[:-1], bounds[1:]):
        assert name == "SCORE" and np.array_equal(part, scorer(x[a:b]))


def test_a_config_of_another_width_fails_the_load(published, monkeypatch):
    _, version_dir = published
    monkeypatch.setattr(triton_model, "pb_utils", _FakeTriton())
    args = {
        "model_repository": str(version_dir.parent),
        "model_version": "1",
        "model_name": "m",
        "model_config": json.dumps({"input": [{"name": "FEATURES", "dims": [3]}]}),
    }
    with pytest.raises(ValueError, match="takes 3 features"):
        triton_model.TritonPythonModel().initialize(args)
