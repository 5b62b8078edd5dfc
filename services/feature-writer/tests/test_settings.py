"""Feature-writer settings: WAIT for Redis replicas is refused where it cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kestrel.feature_writer.settings import FeatureWriterSettings


def test_no_wait_by_default() -> None:
    assert FeatureWriterSettings().redis_wait_replicas == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"redis_wait_replicas": 1, "redis_cluster": True}, "not redis_cluster"),
        ({"redis_wait_timeout_ms": 5000, "redis_timeout_s": 5.0}, "below redis_timeout_s"),
        ({"redis_wait_replicas": -1}, "greater than or equal to 0"),
    ],
)
def test_wait_settings_that_cannot_work_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeatureWriterSettings(**overrides)
