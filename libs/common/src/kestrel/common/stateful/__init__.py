"""Stateful stream processing: keyed state per partition, a compacted changelog, restore on assignment."""

from kestrel.common.stateful.changelog import Changelog, ChangelogError, changelog_topic, ensure_changelog
from kestrel.common.stateful.loop import LoopOptions, StatefulLoop
from kestrel.common.stateful.processor import BatchResult, StatefulProcessor
from kestrel.common.stateful.store import Change, KeyedStateStore, StateCodec, StateStore

__all__ = [
    "BatchResult",
    "Change",
    "Changelog",
    "ChangelogError",
    "KeyedStateStore",
    "LoopOptions",
    "StateCodec",
    "StateStore",
    "StatefulLoop",
    "StatefulProcessor",
    "changelog_topic",
    "ensure_changelog",
]
