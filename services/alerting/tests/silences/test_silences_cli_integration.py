"""`kestrel-alerts silence add|list|expire` on the real broker: records on the compacted silences topic, read back
by the CLI, by the HTTP API's store and, through the codec, as the app's Table would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from faust.serializers import codecs

from kestrel.alerting import silences
from kestrel.alerting.routing import Silence
from kestrel.alerting.silence_codec import register_silence_codec
from kestrel.alerting.silence_store import TopicSilenceStore
from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings
from kestrel.devstack.topics import PrefixedTopics

pytestmark = pytest.mark.integration
CLI = Path(sys.executable).parent / "kestrel-alerts"


@pytest.fixture
async def topics(kafka) -> PrefixedTopics:
    t = PrefixedTopics(kafka.bootstrap)
    await t.apply(silences.SILENCES_TOPIC)
    return t


def _cli(topics: PrefixedTopics, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KESTREL_KAFKA_BOOTSTRAP": topics.bootstrap, "KESTREL_TOPIC_PREFIX": topics.prefix}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


async def test_add_list_expire_through_the_topic(topics):
    added = _cli(
        topics, "silence", "add", "--matcher", 'model="fraud"', "--matcher", "severity!=info",
        "--duration", "2h", "--created-by", "ana", "--comment", "retraining in progress",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    listed = _cli(topics, "silence", "list", "--json")
    (shown,) = json.loads(listed.stdout)
    assert (shown["id"], shown["status"]["state"], shown["createdBy"]) == (silence_id, "active", "ana")
    assert _cli(topics, "silence", "expire", silence_id).returncode == 0
    assert len(_cli(topics, "silence", "list").stdout.strip().splitlines()) == 1, "only the header: expired are hidden"
    assert silence_id in _cli(topics, "silence", "list", "--all").stdout

    settings = KafkaSettings(kafka_bootstrap=topics.bootstrap, topic_prefix=topics.prefix)
    stored = await TopicSilenceStore(settings).all()
    assert silences.status(stored[silence_id], silences.parse_rfc3339(shown["endsAt"])) == "expired"
    raw = topics.read(topics.name(silences.SILENCES_TOPIC), 2)
    name = register_silence_codec(Topics(settings))
    versions = [Silence.from_json(codecs.loads(name, r.value)) for r in await raw]
    assert [v.id for v in versions] == [silence_id] * 2 and versions[1].ends_at_ms < versions[0].ends_at_ms
    assert {r.key for r in await topics.read(topics.name(silences.SILENCES_TOPIC), 2)} == {silence_id.encode()}


async def test_bad_input_and_unknown_id_are_one_line(topics):
    bad = _cli(topics, "silence", "add", "--matcher", "model", "--comment", "x")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "matcher" in bad.stderr
    unknown = _cli(topics, "silence", "expire", "no-such-id")
    assert unknown.returncode == 1 and "no silence no-such-id" in unknown.stderr
