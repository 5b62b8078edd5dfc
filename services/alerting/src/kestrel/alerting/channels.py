"""The app's topics and tables, all with declared string keys and values (JSON text) so that a restore never
guesses a serializer. Partitioning: alert states follow the signals topic (keyed by the signal's labels),
group states and the notification log follow the groups topic (keyed by group key): one alert group, its
state and its log live on one partition and move together on a rebalance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from kestrel.alerting.settings import AlertingSettings

_TEXT: dict[str, Any] = {"key_type": str, "value_type": str, "key_serializer": "raw", "value_serializer": "raw"}


@dataclass(frozen=True)
class Channels:
    drift_reports: Any
    """kestrel.drift-reports.v1 (Avro, Confluent framing; decoded with kestrel.common's serde)."""
    signals: Any
    """Internal: observations (drift, platform) and ticks, keyed by the signal's labels."""
    groups: Any
    """Internal: alert state changes per group, and flush marks, keyed by group key."""
    alerts: Any
    """fingerprint -> {"p", "state"}: the rules' view of every alert."""
    group_table: Any
    """group key -> groups.Entry."""
    log: Any
    """group key -> notifylog.Log."""
    firing: Any
    """Global: fingerprint -> labels (JSON) of every firing alert, for inhibition on any partition."""
    silences: Any
    """Global: silence id -> Silence JSON; its changelog is the silences topic that `kestrel-alerts` writes."""


def declare(app: faust.App, s: AlertingSettings, drift_reports: str, silences: str, silence_codec: str) -> Channels:
    """`silences` is the (prefixed) silences topic, read with `silence_codec` (silence_codec.register_silence_codec)."""
    text: dict[str, Any] = {"schema": faust.Schema(**_TEXT)}
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    avro = {**_TEXT, "value_serializer": silence_codec}
    # internal: created (1 partition, compacted) if the stack has not made it yet; faust's assignor needs it to exist
    silences_topic = app.topic(silences, partitions=1, internal=True, compacting=True, deleting=False, **avro)
    return Channels(
        drift_reports=app.topic(drift_reports, **raw),
        signals=app.topic(f"{app.conf.id}-signals", partitions=s.partitions, internal=True, **_TEXT),
        groups=app.topic(f"{app.conf.id}-groups", partitions=s.partitions, internal=True, **_TEXT),
        alerts=app.Table("alerts", partitions=s.partitions, **text),
        group_table=app.Table("groups", partitions=s.partitions, **text),
        log=app.Table("notification-log", partitions=s.partitions, **text),
        firing=app.GlobalTable("firing", partitions=s.partitions, **text),
        # Written by `kestrel-alerts` and the API, never by the app: without synchronize_all_active_partitions
        # faust stops reading a changelog partition once this replica owns it, and a new silence is never seen;
        # and an owned partition's records are applied in batches of recovery_buffer_size (1,000 by default),
        # so a single new silence would wait in the buffer.
        silences=app.GlobalTable(
            "silences",
            partitions=1,
            changelog_topic=silences_topic,
            schema=faust.Schema(**avro),
            synchronize_all_active_partitions=True,
            recovery_buffer_size=1,
        ),
    )
