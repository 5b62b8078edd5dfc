"""What each SO_REUSEPORT worker gets (kestrel.common.runtime.workers); the processes: services/ingest tests."""

from __future__ import annotations

from kestrel.common.runtime.workers import WORKER_INDEX, worker_env
from kestrel.common.settings import GrpcSettings


def test_each_worker_serves_alone_on_the_shared_port_with_a_metrics_port_of_its_own():
    assert worker_env("KESTREL_INGEST_", 1, 9100) == {
        WORKER_INDEX: "1",
        "KESTREL_INGEST_WORKERS": "1",
        "KESTREL_INGEST_GRPC_REUSEPORT": "true",
        "KESTREL_INGEST_METRICS_PORT": "9101",
        "KESTREL_INGEST_HEALTH_PORT": "0",
    }
    assert "KESTREL_INGEST_HEALTH_PORT" not in worker_env("KESTREL_INGEST_", 0, 9100)  # worker 0 answers probes
    assert worker_env("KESTREL_INGEST_", 1, 0)["KESTREL_INGEST_METRICS_PORT"] == "0"  # any free port stays so


def test_the_port_is_shared_only_when_asked():
    assert GrpcSettings().grpc_server().reuse_port is False
    assert GrpcSettings(grpc_reuseport=True).grpc_server().reuse_port is True
