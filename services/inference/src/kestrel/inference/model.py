"""The model behind Predict and the stream scorer: Triton over tritonclient's asyncio gRPC client.

One client (one HTTP/2 channel) per process; every call has a deadline and goes through a circuit breaker,
so a dead Triton costs callers nothing but a fast UNAVAILABLE once the circuit is open.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from prometheus_client import Histogram
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from kestrel.common.breaker import CircuitBreaker
from kestrel.common.errors import UnavailableError
from kestrel.inference.core import FALLBACK_MODEL
from kestrel.model.triton_config import INPUT, OUTPUT

log = structlog.get_logger()

TRITON_SECONDS = Histogram(
    "kestrel_inference_triton_seconds",
    "Triton call time (one request)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
TRITON_ROWS = Histogram(
    "kestrel_inference_triton_rows",
    "Rows per Triton request",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)


@dataclass(frozen=True, slots=True)
class Scores:
    values: np.ndarray
    """float64, one score per row."""
    versions: list[str]
    """The model version that scored each row (a rollout may switch versions between requests)."""


class TritonModel:
    def __init__(
        self,
        url: str,
        name: str,
        version: str = "",
        *,
        timeout_s: float = 1.0,
        max_rows: int = 1024,
        breaker: CircuitBreaker | None = None,
        ssl: bool = False,
    ) -> None:
        self.url = url
        self.name = name
        self.version = version
        self._timeout = timeout_s
        self._max_rows = max_rows
        self.breaker = breaker or CircuitBreaker(f"triton {url}")
        self._ssl = ssl
        self._client: InferenceServerClient | None = None
        self._metadata: Any = None
        """Triton's model metadata as read at start (None when Triton was not reachable then)."""
        self._outputs = [InferRequestedOutput(OUTPUT)]

    async def start(self) -> None:
        self._client = InferenceServerClient(self.url, ssl=self._ssl)
        try:
            self._metadata = await self._client.get_model_metadata(
                self.name, self.version, client_timeout=self._timeout
            )
            log.info("triton_model_found", url=self.url, model=self.name, versions=list(self._metadata.versions))
        except InferenceServerException as exc:  # not fatal: Triton may start later; calls fail fast until then
            log.warning("triton_model_unavailable_at_start", url=self.url, model=self.name, error=_describe(exc))

    def ready_versions(self) -> list[str]:
        """The versions Triton had ready at start (empty when it was not reachable then)."""
        return [str(v) for v in self._metadata.versions] if self._metadata is not None else []

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def input_width(self) -> int | None:
        """Features per row the model takes, from Triton's metadata; None when the model has no FEATURES input
        (not a Kestrel model). InferenceServerException when Triton or the model is not there (yet)."""
        assert self._client is not None, "start() first"
        meta = self._metadata or await self._client.get_model_metadata(
            self.name, self.version, client_timeout=self._timeout
        )
        shapes = [i.shape for i in meta.inputs if i.name == INPUT]
        return int(shapes[0][-1]) if shapes else None

    async def score(self, matrix: np.ndarray, concurrency: int = 8) -> Scores:
        """Scores every row; more rows than max_rows go as several requests, at most `concurrency` at a time.
        UnavailableError (CircuitOpenError included) when Triton cannot score them."""
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        if not len(rows):  # Triton rejects a zero-row request, and that must not count against the breaker
            return Scores(np.empty(0), [])
        if len(rows) <= self._max_rows:
            values, version = await self._infer(rows)
            return Scores(values, [version] * len(rows))
        limit = asyncio.Semaphore(concurrency)

        async def part(chunk: np.ndarray) -> tuple[np.ndarray, str]:
            async with limit:
                return await self._infer(chunk)

        parts = await asyncio.gather(*(part(rows[i : i + self._max_rows]) for i in range(0, len(rows), self._max_rows)))
        versions = [v for values, v in parts for _ in range(len(values))]
        return Scores(np.concatenate([values for values, _ in parts]), versions)

    async def _infer(self, rows: np.ndarray) -> tuple[np.ndarray, str]:
        assert self._client is not None, "start() first"
        self.breaker.check()
        inp = InferInput(INPUT, list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows)
        TRITON_ROWS.observe(len(rows))
        try:
            with TRITON_SECONDS.time():
                result = await self._client.infer(
                    self.name, [inp], model_version=self.version, outputs=self._outputs, client_timeout=self._timeout
                )
        except InferenceServerException as exc:
            reason = _describe(exc)
            self.breaker.failure(reason)
            raise UnavailableError(f"triton model {self.name} at {self.url} failed: {reason}") from exc
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        self.breaker.success()
        scores = result.as_numpy(OUTPUT)
        return scores.reshape(len(rows)).astype(np.float64), result.get_response().model_version


def _describe(exc: InferenceServerException) -> str:
    status = exc.status() or ""
    return f"{status.removeprefix('StatusCode.')}: {exc.message()}" if status else str(exc.message())


class FallbackModel:
    """The model, or a fixed score while it is unavailable (when one is configured): its predictions then carry
    the model name FALLBACK_MODEL, so the core flags them and the prediction log can tell them apart."""

    def __init__(self, model: TritonModel, fallback_score: float | None) -> None:
        self.model = model
        self._fallback = fallback_score

    async def score(self, matrix: np.ndarray) -> tuple[Scores, str]:
        """Scores and the name of the model that gave them; UnavailableError when there is no fallback."""
        try:
            return await self.model.score(matrix), self.model.name
        except UnavailableError as exc:
            if self._fallback is None:
                raise
            log.warning("model_unavailable_fallback_score", error=str(exc), rows=len(matrix))
            return Scores(np.full(len(matrix), self._fallback), [""] * len(matrix)), FALLBACK_MODEL
