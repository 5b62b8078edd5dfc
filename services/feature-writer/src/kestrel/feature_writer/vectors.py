"""Decoded feature vectors to online-store writes: checks against the definitions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import Rejection
from kestrel.featureset.check import VectorCheck
from kestrel.online_store import VectorWrite


def prepare(
    records: Sequence[Any], decoded: Sequence[Any], check: VectorCheck, prefix: str
) -> tuple[list[VectorWrite], list[Rejection]]:
    """Writes for the good records; rejections (dead letters) for undecodable or inconsistent ones."""
    writes, rejections = [], []
    for record, value in zip(records, decoded):
        if isinstance(value, SerializationError):
            rejections.append(Rejection(record, value.reason))
        elif problem := check.problem(value):
            rejections.append(Rejection(record, problem))
        else:
            try:
                writes.append(VectorWrite.from_record({**value, "features": check.by_name(value)}, prefix))
            except ValueError as exc:  # a version with braces cannot be part of a key
                rejections.append(Rejection(record, str(exc)))
    return writes, rejections
