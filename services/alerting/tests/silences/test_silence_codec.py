"""What `kestrel-alerts` writes on the silences topic is what the app's faust Table reads: routing.Silence JSON."""

from __future__ import annotations

from faust.serializers import codecs

from kestrel.alerting import silences
from kestrel.alerting.routing import Silence, silenced
from kestrel.alerting.silence_codec import register_silence_codec
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import load_catalogue

NOW = 1_800_000_000_000


def test_topic_bytes_load_as_silence_json_and_back():
    topics = Topics(KafkaSettings(), load_catalogue(), FileSchemaRegistry())
    name = register_silence_codec(topics)
    serde = topics.serde(topics.bind(silences.SILENCES_TOPIC))
    record = silences.new_silence(
        [silences.parse_matcher('model="fraud"')], now_ms=NOW, ends_at_ms=NOW + 60_000, created_by="ana", comment="x"
    )
    text = codecs.loads(name, serde.serialize(record))
    silence = Silence.from_json(text)
    assert silence == silences.to_silence(record)
    assert silenced({"model": "fraud"}, [silence], NOW + 1)
    again = serde.deserialize(codecs.dumps(name, text))
    assert {k: v for k, v in again.items() if k != "updated_at"} == {
        k: v for k, v in record.items() if k != "updated_at"
    }
