"""The `up --demo` traffic really lands: events through ingest and direct, labels, ingest dead letters."""

import pytest

from kestrel.common.topics import load_catalogue
from kestrel.devstack import demo
from kestrel.devstack.topics import apply_topics

pytestmark = pytest.mark.integration


async def test_demo_pushes_traffic_through_ingest_and_kafka(kafka, tmp_path):
    await apply_topics(kafka.bootstrap, load_catalogue())
    env = {"KESTREL_KAFKA_BOOTSTRAP": kafka.bootstrap, "KESTREL_SCHEMA_REGISTRY_STORE": str(tmp_path / "reg.json")}
    landed = await demo.run(env, keep_serving=False, seconds=1.0)
    assert landed["kestrel.events.v1"] > 3_000  # ~2,000 via ingest + ~5,000 direct, minus rejects
    assert landed["kestrel.dlq.ingest.v1"] > 0  # the 1% invalid events, kept for audit
    assert landed["kestrel.labels.v1"] > 0
