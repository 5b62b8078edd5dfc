"""Decoded feature vectors to online-store writes: checks against the definitions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import Rejection
from kestrel.common.online_store import VectorWrite


class VectorCheck:
    """Vectors of the known feature-set version must carry exactly its features; other versions pass,
    because during a rollout the writer may be older or newer than the features service."""

    def __init__(self, version: str | None = None, names: Iterable[str] = ()) -> None:
        self.version = version
        self._names = frozenset(names)

    def problem(self, record: dict[str, Any]) -> str | None:
        if record["feature_set_version"] != self.version or record["features"].keys() == self._names:
            return None
        missing = sorted(self._names - record["features"].keys())
        extra = sorted(record["features"].keys() - self._names)
        return f"features do not match {self.version}: missing {missing}, unexpected {extra}"


def prepare(records: Sequence[Any], decoded: Sequence[Any], check: VectorCheck,
            prefix: str) -> tuple[list[VectorWrite], list[Rejection]]:
    """Writes for the good records; rejections (dead letters) for undecodable or inconsistent ones."""
    writes, rejections = [], []
    for record, value in zip(records, decoded):
        if isinstance(value, SerializationError):
            rejections.append(Rejection(record, value.reason))
        elif problem := check.problem(value):
            rejections.append(Rejection(record, problem))
        else:
            try:
                writes.append(VectorWrite.from_record(value, prefix))
            except ValueError as exc:  # a version with braces cannot be part of a key
                rejections.append(Rejection(record, str(exc)))
    return writes, rejections
