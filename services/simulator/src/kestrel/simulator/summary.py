"""What a run did: events generated and delivered, rejections by field, labels, fraud share."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Summary:
    elapsed_s: float = 0.0
    generated: int = 0
    """Events the generator produced (valid and invalid)."""
    sent: int = 0
    """Events acknowledged by Kafka or accepted by ingest."""
    rejected: int = 0
    """Events ingest refused as invalid (only with --to ingest)."""
    failed: int = 0
    """Events lost to delivery failures (broker or ingest unavailable after retries)."""
    invalid: int = 0
    """Events deliberately broken (--invalid-rate)."""
    fraud: int = 0
    patterns: Counter[str] = field(default_factory=Counter)
    labels_generated: int = 0
    labels_sent: int = 0
    labels_failed: int = 0
    fraud_labels: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    drift: str = ""
    """Scenario and how far its ramp has gone, e.g. 'amount-shift 40%'; empty before it starts."""
    first_event_ms: int = 0
    last_event_ms: int = 0

    @property
    def fraud_share(self) -> float:
        return self.fraud / self.generated if self.generated else 0.0

    @property
    def rate(self) -> float:
        """Delivered events per wall-clock second over the whole run."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_log(self) -> dict[str, Any]:
        out = asdict(self)
        out["patterns"] = dict(self.patterns)
        out["rejections"] = dict(self.rejections)
        out["elapsed_s"] = round(self.elapsed_s, 2)
        out["fraud_share"] = round(self.fraud_share, 5)
        out["rate"] = round(self.rate, 1)
        return out
