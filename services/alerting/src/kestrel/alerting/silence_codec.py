"""A faust codec for the silences topic: its Avro records in, routing.Silence JSON (what the app's Table holds) out."""

from __future__ import annotations

import time
from typing import Any

from faust.serializers import codecs

from kestrel.alerting.routing import Silence
from kestrel.alerting.silences import SILENCES_TOPIC, matcher_record, to_silence
from kestrel.common.avro import AvroSerde
from kestrel.common.runtime.bindings import Topics

CODEC = "kestrel-silence"


class SilenceCodec(codecs.Codec):
    """kestrel.alerting-silences.v1 values (Confluent-framed Avro, schemas/alerting_silence.avsc) <-> the JSON
    text of routing.Silence, so a Table over that topic (its changelog) reads them as it reads its own values."""

    def __init__(self, serde: AvroSerde) -> None:
        super().__init__()
        self._serde = serde

    def _loads(self, s: bytes) -> Any:
        return to_silence(self._serde.deserialize(s)).to_json()

    def _dumps(self, s: Any) -> bytes:
        silence = Silence.from_json(s)
        return self._serde.serialize(
            {
                "silence_id": silence.id,
                "matchers": [matcher_record(m) for m in silence.matchers],
                "starts_at": silence.starts_at_ms,
                "ends_at": silence.ends_at_ms,
                "created_by": silence.created_by,
                "comment": silence.comment,
                "updated_at": time.time_ns() // 1_000_000,
            }
        )


def register_silence_codec(topics: Topics) -> str:
    """Register the codec (once per process) and return its name, for `value_serializer=` of the silences Table
    whose changelog_topic is `topics.bind(SILENCES_TOPIC).name`."""
    codecs.register(CODEC, SilenceCodec(topics.serde(topics.bind(SILENCES_TOPIC))))
    return CODEC
