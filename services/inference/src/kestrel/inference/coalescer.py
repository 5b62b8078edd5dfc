"""Concurrent unary Predict calls scored together: concurrency becomes rows per Triton request, not requests."""

from __future__ import annotations

import asyncio
import contextvars

from kestrel.inference.core import Item, Prediction
from kestrel.inference.scoring import Scorer


class Coalescer:
    """Gathers concurrent unary Predict calls into batches with no timer: whatever has arrived while earlier
    batches were in flight is scored together, so a lone call waits for nothing and 64 concurrent callers
    share a few Triton requests. At most `max_in_flight` batches run at once, each of at most `max_rows`."""

    def __init__(self, scorer: Scorer, *, max_rows: int = 256, max_in_flight: int = 1) -> None:
        self._scorer = scorer
        self._max_rows = max_rows
        self._slots = max_in_flight
        self._queue: list[tuple[Item, asyncio.Future[Prediction]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._context = contextvars.copy_context()

    async def submit(self, item: Item) -> Prediction:
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._queue and self._slots > 0:
            batch, self._queue = self._queue[: self._max_rows], self._queue[self._max_rows :]
            self._slots -= 1
            # The context from construction (service-wide bindings only): a batch holds several callers' work,
            # so it must not log under the request id of the caller that happened to start it.
            task = asyncio.create_task(self._run(batch), context=self._context.copy())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Prediction]]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]  # cancelled callers drop out
        try:
            if live:
                predictions = await self._scorer.score([item for item, _ in live])
                for (_, future), prediction in zip(live, predictions):
                    if not future.done():
                        future.set_result(prediction)
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the batch's error
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._slots += 1
            self._dispatch()
