"""Decoded views of the app's JSON-text tables: each distinct value is decoded once, not on every read.

Table values are immutable strings (a write stores a new string), and Python caches a string's hash, so a
cache keyed by the text is both correct and cheap: every signal, tick and flush used to decode the whole
table, which made a burst of N alerts cost O(N^2) JSON decodes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from kestrel.alerting.rules import AlertState

_CACHE = 1 << 16


@lru_cache(maxsize=_CACHE)
def alert_entry(text: str) -> tuple[int, AlertState]:
    """An alerts-table value: (the signals partition that owns it, its state)."""
    entry = json.loads(text)
    return entry["p"], AlertState.from_json(entry["state"])


@lru_cache(maxsize=_CACHE)
def group_partition(text: str) -> int:
    """The groups partition that owns a groups-table value (the value itself is decoded fresh: it is mutated)."""
    return int(json.loads(text)["p"])


class AlertStates(Mapping[str, AlertState]):
    """fingerprint -> AlertState over the alerts table, decoding only what is read."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getitem__(self, fingerprint: str) -> AlertState:
        text = self._table.get(fingerprint)
        if text is None:
            raise KeyError(fingerprint)
        return alert_entry(text)[1]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._table.keys()))

    def __len__(self) -> int:
        return len(self._table)


def states_of(table: Any, partition: int) -> dict[str, AlertState]:
    """The alerts one signals partition owns."""
    owned = (alert_entry(text) for text in table.values())
    return {state.fingerprint: state for p, state in owned if p == partition}


def firing_count(table: Any) -> int:
    return sum(1 for text in table.values() if alert_entry(text)[1].state == "firing")
