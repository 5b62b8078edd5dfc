"""The service table: stack.env holds exactly the variables services read, and each replica its own ports."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from kestrel.common.settings import GLOBAL_PREFIX
from kestrel.devstack.services import CLIENTS, SERVICES, _import, parse_replicas, replica_env, runnable, stack_env
from kestrel.devstack.stack import ADDRESSES
from kestrel.devstack.supervisor import _pick_ports

ADDRESS_VALUES = {
    "kafka_bootstrap": "127.0.0.1:19092",
    "redis_url": "redis://127.0.0.1:16379/0",
    "postgres_dsn": "postgresql://kestrel@127.0.0.1:15432/kestrel",
    "schema_registry_store": "/tmp/stack/schema-registry.json",
    "triton_url": "127.0.0.1:18001",
    "triton_http_url": "http://127.0.0.1:18000",
    "ingest_addr": "127.0.0.1:15051",
}


def readers() -> list[type]:
    return [s.settings_class for s in SERVICES] + [_import(c) for c in CLIENTS]


def names_read(cls: type) -> set[str]:
    prefix = cls.model_config.get("env_prefix", GLOBAL_PREFIX)  # type: ignore[attr-defined]
    fields = cls.model_fields  # type: ignore[attr-defined]
    return {f"{p}{name.upper()}" for name in fields for p in (prefix, GLOBAL_PREFIX)}


def test_every_name_in_stack_env_is_read_by_some_service_or_client() -> None:
    env = stack_env(ADDRESS_VALUES)
    read = set().union(*(names_read(cls) for cls in readers()))
    assert env and set(env) <= read
    assert "KESTREL_POSTGRES_DSN" in env  # the prediction-logger reads it


def test_each_service_reads_the_stack_addresses_from_stack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sourcing stack.env points every service at the stack (it once wrote KESTREL_TRITON_GRPC_URL, which
    inference never read, so `kestrel-inference` went to 127.0.0.1:8001)."""
    for key, value in stack_env(ADDRESS_VALUES).items():
        monkeypatch.setenv(key, value)
    for service in SERVICES:
        settings = service.settings_class()
        wanted = {name: value for name, value in ADDRESS_VALUES.items() if service.reads(name)}
        assert "kafka_bootstrap" in wanted, service.name
        assert {name: _plain(getattr(settings, name)) for name in wanted} == wanted, service.name
    inference = next(s for s in SERVICES if s.name == "inference").settings_class()
    assert inference.triton_url == ADDRESS_VALUES["triton_url"]  # type: ignore[attr-defined]


def _plain(value: object) -> str:
    """A setting as the service uses it: a secret (the PostgreSQL URL) unwrapped."""
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def test_without_triton_the_services_that_score_do_not_run() -> None:
    addresses = {k: v for k, v in ADDRESS_VALUES.items() if not k.startswith("triton_")}
    names = [s.name for s in runnable(addresses, ADDRESSES)]
    assert names == ["ingest", "features", "feature-writer", "prediction-logger", "drift-monitor", "alerting"]
    assert [s.name for s in runnable(ADDRESS_VALUES, ADDRESSES)] == [s.name for s in SERVICES]


def test_replicas_get_ports_of_their_own_under_their_service_prefix() -> None:
    features = next(s for s in SERVICES if s.name == "features")
    taken: set[int] = set()
    first, second = _pick_ports(features, taken), _pick_ports(features, taken)
    assert set(first) == set(second) == set(features.port_fields) and "metrics_port" in first
    assert not set(first.values()) & set(second.values())
    env = replica_env(features, first)
    assert env["KESTREL_FEATURES_METRICS_PORT"] == str(first["metrics_port"])


def test_inference_runs_as_an_api_process_and_a_scorer_process_on_loopback() -> None:
    by_name = {s.name: s for s in SERVICES}
    api = replica_env(by_name["inference"], {"grpc_port": 1})
    scorer = replica_env(by_name["inference-scorer"], {"health_port": 2})
    assert (by_name["inference"].script, by_name["inference-scorer"].script) == (
        "kestrel-inference",
        "kestrel-inference-scorer",
    )
    assert scorer["KESTREL_INFERENCE_HEALTH_PORT"] == "2"
    assert api["KESTREL_INFERENCE_GRPC_HOST"] == "127.0.0.1"


def test_parse_replicas() -> None:
    assert parse_replicas(["features=2", "feature-writer=3,inference-scorer=1"]) == {
        "features": 2,
        "feature-writer": 3,
        "inference-scorer": 1,
    }
    with pytest.raises(ValueError, match="not a consumer"):
        parse_replicas(["ingest=2"])
    with pytest.raises(ValueError, match="NAME=N"):
        parse_replicas(["features=0"])
    with pytest.raises(KeyError, match="unknown service"):
        parse_replicas(["nope=2"])


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_field_the_stack_assigns_a_port_to_is_a_port(service) -> None:
    """The stack gives each *_port field a free port: a field so named that is no port breaks the service
    (seen: a boolean reuse_port got a port number and the process refused its configuration)."""
    fields = service.settings_class.model_fields
    assert all(fields[name].annotation is int for name in service.port_fields), service.port_fields
