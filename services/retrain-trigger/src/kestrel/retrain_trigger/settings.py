"""retrain-trigger service settings (env prefix KESTREL_RETRAIN_TRIGGER_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KafkaSettings
from kestrel.retrain_trigger.policy import RetrainPolicy

_DEFAULT = RetrainPolicy()


class RetrainTriggerSettings(KafkaSettings):
    """Broker connection and topic prefix come from KafkaSettings; the rest is the retrain-trigger's own."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_RETRAIN_TRIGGER_")

    app_id: str = "kestrel-retrain-trigger"
    """faust app id: the consumer group and the prefix of the internal and changelog topics."""
    alerts_topic: str = "kestrel.alerts.v1"
    lifecycle_topic: str = "kestrel.model-lifecycle.v1"
    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """The prediction log (labels, shadow scores) and the model registry; the job gets it too."""
    triton_http_url: str = "http://127.0.0.1:8000"
    """Triton's HTTP endpoint (explicit model control): challengers are loaded through it."""
    model_repository: str = "infra/triton/models"
    """Triton's model repository (shared with Triton): challengers are published into it."""
    artifacts_dir: str = "var/models"
    """Where the job saves challenger artifacts (given to the job as KESTREL_RETRAIN_ARTIFACTS_DIR)."""
    job_command: str = "kestrel-retrain-job"
    """The training job's command line (shell words); --model, --hours, --reason and --actor are appended. It
    prints the job's JSON outcome as its last line. On Kubernetes: infra/k8s/retrain-trigger/run-job.sh."""
    job_env: dict[str, str] = Field(default_factory=dict)
    """More environment for the job, JSON (e.g. {"KESTREL_RETRAIN_MARGIN": "0.01"})."""
    job_timeout_s: float = Field(3600.0, gt=0)
    """A job still running after this is killed and its run failed."""
    train_hours: float = Field(24.0, gt=0)
    """The job trains on the predictions of the last this many hours (event time)."""
    shadow_s: float = Field(3600.0, ge=0)
    """How long the challenger scores in shadow before it is judged."""
    shadow_tolerance: float = Field(0.05, ge=0)
    """Live metrics in the shadow window may be this much below the holdout's before the challenger is rejected."""
    shadow_min_labels: int = Field(200, ge=1)
    """Fewer labelled shadow predictions (or no fraud among them): no measured live metric; fewer shadow
    predictions at all: no estimated one either, and the challenger is promoted on the holdout's word."""
    threshold: float = Field(0.5, ge=0, le=1)
    """Decision threshold the live precision, recall and F1 are measured at."""
    alerts: list[str] = Field(default_factory=lambda: sorted(_DEFAULT.alerts))
    """Alert names (firing) that may start a run (JSON list)."""
    min_severity: str = Field(_DEFAULT.min_severity, pattern="^(info|warning|critical)$")
    min_new_labels: int = Field(_DEFAULT.min_new_labels, ge=0)
    """Labelled predictions since the champion's training window ended needed before an alert retrains."""
    cooldown_s: float = Field(_DEFAULT.cooldown_s, ge=0)
    """Least time between the starts of two runs of one model."""
    trigger_max_age_s: float = Field(3600.0, gt=0)
    """Requests and alerts written to their topic longer ago than this are history, not triggers (a new consumer
    group reads both topics from the start)."""
    partitions: int = Field(3, ge=1)
    """Partitions of the internal topic and the runs table: the most replicas that share the models."""
    tick_interval_s: float = Field(1.0, gt=0)
    """How often time-based steps (the end of a shadow window, resuming a run after a rebalance) are checked."""
    session_timeout_ms: int = Field(10_000, ge=1000)
    """How soon the group hands a dead replica's partitions (and models) to the others."""
    data_dir: str = "/tmp/kestrel-retrain-trigger"
    """faust's data directory (the runs table is in memory, restored from its changelog)."""
    health_port: int = 8080
    """HTTP /healthz (the faust app runs) and /readyz (partitions assigned and the table recovered); 0 disables."""

    def policy(self) -> RetrainPolicy:
        return RetrainPolicy(frozenset(self.alerts), self.min_severity, self.min_new_labels, self.cooldown_s)
