"""The contract a stateful service implements: one batch of records in, outputs and rejections out. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import ConsumerRecord

from kestrel.common.kafka import OutRecord, Rejection


@dataclass
class BatchResult:
    outputs: list[OutRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> next offset to commit."""


class StatefulProcessor(Protocol):
    """Applies records to the store's state in record order and says what to produce.

    `now_ms` is the wall clock the loop read for this batch, so the processor itself stays pure.
    Records the restored state already holds (replays after a restart) must change nothing.
    """

    def process(self, records: Sequence[ConsumerRecord], now_ms: int) -> BatchResult: ...
