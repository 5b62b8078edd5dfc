"""Real tritonserver from the nvidia-pytriton wheel: start, load, infer, statistics, unload, stop."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from kestrel.devstack.process import ComponentError
from kestrel.devstack.triton import TritonError, TritonServer

pytestmark = pytest.mark.integration

MODELS = Path(__file__).resolve().parents[3] / "infra" / "triton" / "models"
SMOKE = "kestrel_smoke"


def smoke_formula(rows: np.ndarray) -> np.ndarray:
    """What infra/triton/models/kestrel_smoke/1/model.py computes: sigmoid(0.25 * row sum - 1)."""
    logits = rows.sum(axis=1, keepdims=True, dtype=np.float32) * np.float32(0.25) - np.float32(1.0)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


async def infer(server: TritonServer, rows: np.ndarray) -> np.ndarray:
    body = {
        "inputs": [{"name": "INPUT__0", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]
    }
    answer = await asyncio.to_thread(post_json, f"{server.http_url}/v2/models/{SMOKE}/infer", body)
    [output] = answer["outputs"]
    assert output["name"] == "OUTPUT__0" and output["shape"] == [len(rows), 1]
    return np.asarray(output["data"], dtype=np.float32).reshape(len(rows), 1)


async def inference_count(server: TritonServer) -> int:
    stats = await server.model_stats(SMOKE)
    return sum(version["inference_count"] for version in stats["model_stats"])


@pytest.fixture(scope="module")
async def triton(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TritonServer]:
    server = TritonServer(tmp_path_factory.mktemp("triton"), MODELS)
    await server.start()
    yield server
    await server.stop()


async def test_smoke_model_load_infer_stats_unload(triton: TritonServer) -> None:
    await triton.load_model(SMOKE)
    assert await triton.model_ready(SMOKE)
    before = await inference_count(triton)
    rows = np.random.default_rng(7).normal(size=(5, 8)).astype(np.float32)

    scores = await infer(triton, rows)

    np.testing.assert_allclose(scores, smoke_formula(rows), rtol=1e-6)
    assert await inference_count(triton) == before + len(rows)
    await triton.unload_model(SMOKE)
    assert not await triton.model_ready(SMOKE)


async def test_concurrent_requests_each_get_their_own_rows(triton: TritonServer) -> None:
    await triton.load_model(SMOKE)
    rng = np.random.default_rng(11)
    batches = [rng.normal(size=(1 + i % 7, 8)).astype(np.float32) for i in range(32)]
    try:
        # Concurrent requests let the dynamic batcher merge them; the model must split results back in order.
        results = await asyncio.gather(*(infer(triton, rows) for rows in batches))
    finally:
        await triton.unload_model(SMOKE)
    for rows, scores in zip(batches, results, strict=True):
        np.testing.assert_allclose(scores, smoke_formula(rows), rtol=1e-6)


async def test_loading_a_missing_model_names_it(triton: TritonServer) -> None:
    with pytest.raises(TritonError, match="load of model 'no_such_model' failed"):
        await triton.load_model("no_such_model")


async def test_preloaded_server_serves_then_stops_cleanly(tmp_path: Path) -> None:
    server = TritonServer(tmp_path, MODELS, load_models=[SMOKE])
    await server.start()
    pid, prefix = server.pid, server.shm_prefix
    try:
        assert await server.model_ready(SMOKE)
        rows = np.ones((3, 8), dtype=np.float32)
        np.testing.assert_allclose(await infer(server, rows), smoke_formula(rows), rtol=1e-6)
    finally:
        await server.stop()
    assert pid is not None and not _alive(pid)
    assert not list(Path("/dev/shm").glob(f"{prefix}*"))


async def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    server = TritonServer(tmp_path, MODELS, load_models=["no_such_model"])
    began = time.monotonic()
    with pytest.raises(ComponentError, match="model 'no_such_model': model not found"):
        await server.start()
    assert server.pid is None and time.monotonic() - began < 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
