"""Online feature store on Redis: layout, the event-time-ordered writer and the inference read API."""

from kestrel.online_store.client import client_for, redis_client
from kestrel.online_store.layout import DEFAULT_PREFIX, FeatureLayout, entity_key
from kestrel.online_store.reader import OnlineBatch, OnlineStore, OnlineVector
from kestrel.online_store.writer import OnlineStoreWriter, VectorWrite, WriteResult, newest_per_key

__all__ = [
    "DEFAULT_PREFIX",
    "FeatureLayout",
    "OnlineBatch",
    "OnlineStore",
    "OnlineStoreWriter",
    "OnlineVector",
    "VectorWrite",
    "WriteResult",
    "client_for",
    "entity_key",
    "newest_per_key",
    "redis_client",
]
