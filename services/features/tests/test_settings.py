"""Features settings: env prefix, defaults derived from the feature set version, fail-fast checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kestrel.features.settings import FeaturesSettings


def test_env_prefix_and_shared_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_KAFKA_BOOTSTRAP", "shared:9092")
    monkeypatch.setenv("KESTREL_FEATURES_BATCH_MAX", "500")
    s = FeaturesSettings()
    assert (s.kafka_bootstrap, s.batch_max) == ("shared:9092", 500)
    assert s.group("card.v1") == "kestrel-features.card.v1"
    assert FeaturesSettings(group_id="mine").group("card.v1") == "mine"


def test_heartbeat_must_fit_the_session_timeout() -> None:
    with pytest.raises(ValidationError, match="heartbeat"):
        FeaturesSettings(session_timeout_ms=3000, heartbeat_interval_ms=1500)
