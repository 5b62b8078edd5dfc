"""The model in a real tritonserver (explicit control): served scores equal numpy, new versions load, unload works."""

from __future__ import annotations

import asyncio
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from kestrel.model import TrainConfig, build, load, publish_to_repository, train
from kestrel.model.learners import MLPConfig

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[3] / "infra" / "triton" / "models" / "kestrel_fraud"
NAME = "kestrel_fraud"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory):
    """A tritonserver of our own over a copy of the repository, so tests can publish versions into it."""
    launcher = pytest.importorskip("kestrel.devstack.triton")
    repo = tmp_path_factory.mktemp("triton-models")
    shutil.copytree(SOURCE, repo / NAME, ignore=shutil.ignore_patterns("__pycache__"))
    triton = launcher.TritonServer(tmp_path_factory.mktemp("triton-state"), repo)
    triton.die_with_parent = True
    await triton.start()
    yield triton
    await triton.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client(server):
    c = InferenceServerClient(server.grpc_url)
    yield c
    await c.close()


async def score(client: InferenceServerClient, rows: np.ndarray, version: str = "") -> np.ndarray:
    x = np.ascontiguousarray(rows, dtype=np.float32)
    inputs = [InferInput("FEATURES", list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x)
    result = await client.infer(NAME, inputs, model_version=version, outputs=[InferRequestedOutput("SCORE")])
    return result.as_numpy("SCORE")[:, 0]


async def test_served_scores_equal_the_numpy_reference(server, client):
    await server.load_model(NAME)
    v1 = load(SOURCE / "1")
    rows = v1.reference.sample[:1200]  # real feature rows of the training data
    # Concurrent requests of several sizes, so the dynamic batcher merges some into one execution.
    sizes = [1, 1, 3, 17, 100, 1024, 1, 53]
    bounds = np.cumsum([0, *sizes])
    parts = await asyncio.gather(*(score(client, rows[a:b]) for a, b in pairwise(bounds)))
    served = np.concatenate(parts)
    assert np.abs(served - v1.predict(rows[: bounds[-1]])).max() < 1e-5


async def test_a_published_version_loads_through_the_api_and_the_previous_stays_pinnable(server, client, synthetic):
    await server.load_model(NAME)
    v1 = load(SOURCE / "1")
    v2 = build(train(synthetic, TrainConfig(kind="logreg", mlp=MLPConfig(epochs=1))), synthetic, NAME, 2)
    publish_to_repository(v2, server.model_repository)
    rows = v1.reference.sample[:256]
    assert np.abs(await score(client, rows) - v1.predict(rows)).max() < 1e-5  # not served before the load
    await server.load_model(NAME)
    assert np.abs(await score(client, rows) - v2.predict(rows)).max() < 1e-5  # latest version by default
    assert np.abs(await score(client, rows, version="1") - v1.predict(rows)).max() < 1e-5  # num_versions: 2
    stats = await server.model_stats(NAME)
    assert {s["version"] for s in stats["model_stats"]} == {"1", "2"}


async def test_unloading_stops_serving(server, client):
    await server.load_model(NAME)
    await server.unload_model(NAME)
    assert not await server.model_ready(NAME)
    with pytest.raises(InferenceServerException):
        await score(client, np.zeros((1, len(load(SOURCE / "1").feature_names))))
    await server.load_model(NAME)
    assert await server.model_ready(NAME)
