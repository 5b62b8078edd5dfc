"""The features service's wiring: events in, windowed per-entity features out, state in a changelog."""

from __future__ import annotations

from typing import Any

from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.consumer import producer
from kestrel.common.runtime.stateful import stateful_loop
from kestrel.common.stateful import LoopOptions
from kestrel.common.validation import Limits
from kestrel.features.processor import BatchProcessor
from kestrel.features.settings import FeaturesSettings
from kestrel.features.store import StateStore
from kestrel.featureset import FeatureDefinitionError, FeatureSet, load_feature_set
from kestrel.featureset.state import FeatureComputer
from kestrel.featureset.wire import VectorEncoder


def components(rt: Runtime[FeaturesSettings]) -> list[Any]:
    """Producer, changelog, then the stateful loop (intake last: it stops first and commits)."""
    s = rt.settings
    assert rt.topics is not None
    fs = feature_set(s)
    events, vectors = rt.topics.bind(s.events_topic), rt.topics.bind(s.features_topic)
    computer = FeatureComputer(fs)
    limits = Limits(max_future_skew_ms=s.max_future_skew_s * 1000)
    store = StateStore(computer, s.evict_after_s * 1000, limits.max_future_skew_ms)
    encoder = VectorEncoder.for_feature_set(rt.topics.serde(vectors), fs)
    processor = BatchProcessor(computer, store, rt.topics.serde(events).deserialize, encoder, vectors.name, limits)
    out = producer(rt, vectors)
    options = LoopOptions(
        batch_max=s.batch_max,
        poll_timeout_ms=s.poll_timeout_ms,
        commit_interval_s=s.commit_interval_s,
        retry_max_s=s.retry_max_s,
    )
    loop = stateful_loop(
        rt,
        events,
        s.group(fs.version_id),
        processor,
        store,
        out,
        options,
        s.changelog_replication,
        session_timeout_ms=s.session_timeout_ms,
        heartbeat_interval_ms=s.heartbeat_interval_ms,
        max_poll_interval_ms=s.max_poll_interval_ms,
    )
    return [out, *loop]


def feature_set(s: FeaturesSettings) -> FeatureSet:
    """The configured feature set; its windows must fit inside the eviction horizon."""
    fs = load_feature_set(s.feature_set)
    if s.evict_after_s < fs.max_window_s + fs.allowed_lateness_s:
        raise FeatureDefinitionError(
            f"KESTREL_FEATURES_EVICT_AFTER_S={s.evict_after_s} is shorter than the "
            f"longest window plus lateness ({fs.max_window_s + fs.allowed_lateness_s} s)"
        )
    return fs
