"""Online feature store on Redis: layout, the event-time-ordered writer and the inference read API.

Names resolve on first use (PEP 562), so importing `kestrel.online_store.settings` for a service's settings
(and its `--help`) does not load redis or numpy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the type checker sees the real names
    from kestrel.online_store.client import client_for, redis_client
    from kestrel.online_store.layout import (
        DEFAULT_PREFIX,
        FeatureLayout,
        LogColumns,
        LoggedEvent,
        entity_key,
        pack_event,
    )
    from kestrel.online_store.reader import NO_LOG, EventLog, OnlineBatch, OnlineStore, OnlineVector
    from kestrel.online_store.writer import OnlineStoreWriter, VectorWrite, WriteResult, newest_per_key

_HOME = {
    "client_for": "client",
    "redis_client": "client",
    "DEFAULT_PREFIX": "layout",
    "FeatureLayout": "layout",
    "entity_key": "layout",
    "OnlineBatch": "reader",
    "OnlineStore": "reader",
    "OnlineVector": "reader",
    "EventLog": "reader",
    "NO_LOG": "reader",
    "LoggedEvent": "layout",
    "LogColumns": "layout",
    "pack_event": "layout",
    "OnlineStoreWriter": "writer",
    "VectorWrite": "writer",
    "WriteResult": "writer",
    "newest_per_key": "writer",
}

__all__ = [
    "DEFAULT_PREFIX",
    "FeatureLayout",
    "OnlineBatch",
    "OnlineStore",
    "OnlineStoreWriter",
    "OnlineVector",
    "EventLog",
    "LogColumns",
    "LoggedEvent",
    "NO_LOG",
    "VectorWrite",
    "WriteResult",
    "client_for",
    "entity_key",
    "newest_per_key",
    "pack_event",
    "redis_client",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
