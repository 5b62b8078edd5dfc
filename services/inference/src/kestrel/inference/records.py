"""The kestrel.predictions.v1 record of a prediction: built in this one place, whichever path scored it."""

from __future__ import annotations

from kestrel.common.kafka import OutRecord
from kestrel.featureset.wire import PredictionEncoder
from kestrel.inference.core import Prediction, StreamScored


class PredictionRecords:
    """Encodes predictions as records for the predictions topic, keyed by entity (a card keeps its partition)."""

    def __init__(self, encoder: PredictionEncoder, topic: str, source: str) -> None:
        self._encoder = encoder
        self._encode = encoder.encode
        self.topic = topic
        self.source = source
        """"api", "stream" or "shadow" (a challenger scored beside the champion): which path scored it."""

    def with_source(self, source: str) -> PredictionRecords:
        """The same records for another path (the shadow scores of the stream scorer)."""
        return PredictionRecords(self._encoder, self.topic, source)

    def record(self, p: Prediction, latency_us: int, predicted_at: int) -> OutRecord:
        value = self._encode(
            prediction_id=p.prediction_id,
            event_id=p.event_id,
            entity_id=p.entity_id,
            event_time=p.event_time,
            model_name=p.model_name,
            model_version=p.model_version,
            score=p.score,
            threshold=p.threshold,
            decision=p.decision,
            feature_set_version=p.feature_set_version,
            features=p.features,
            features_age_ms=p.features_age_ms,
            degraded=p.degraded,
            flags=p.flags,
            latency_us=latency_us,
            source=self.source,
            predicted_at=predicted_at,
        )
        return OutRecord(self.topic, value, p.entity_id.encode())

    def records(self, predictions: list[Prediction], latency_us: int, predicted_at: int) -> list[OutRecord]:
        return [self.record(p, latency_us, predicted_at) for p in predictions]

    def stream_records(self, scored: StreamScored, latency_us: int, predicted_at: int) -> list[OutRecord]:
        """A scored stream batch as records, encoded column by column (see PredictionEncoder.encode_batch)."""
        rows = scored.rows
        values = self._encoder.encode_batch(
            prediction_ids=scored.prediction_ids,
            event_ids=rows.event_ids,
            entity_ids=rows.entity_ids,
            event_times=rows.event_times,
            model_name=scored.model_name,
            model_versions=scored.versions,
            scores=scored.scores,
            threshold=scored.threshold,
            decisions=scored.decisions,
            feature_set_version=scored.feature_set_version,
            features=rows.values,
            features_age_ms=scored.ages_ms,
            latency_us=latency_us,
            source=self.source,
            predicted_at=predicted_at,
        )
        topic = self.topic
        return [OutRecord(topic, value, entity.encode()) for value, entity in zip(values, rows.entity_ids)]
