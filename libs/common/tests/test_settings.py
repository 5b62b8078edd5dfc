"""Settings: service prefix wins over the shared KESTREL_ prefix; bad values fail fast."""

import pytest
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KafkaSettings, load_settings


class DemoSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_DEMO_")
    batch: int = 10


def test_shared_prefix_is_fallback(monkeypatch):
    monkeypatch.setenv("KESTREL_KAFKA_BOOTSTRAP", "shared:1")
    assert load_settings(DemoSettings).kafka_bootstrap == "shared:1"
    monkeypatch.setenv("KESTREL_DEMO_KAFKA_BOOTSTRAP", "own:2")
    assert load_settings(DemoSettings).kafka_bootstrap == "own:2"


def test_bad_value_exits_with_field_name(monkeypatch, capsys):
    monkeypatch.setenv("KESTREL_DEMO_BATCH", "many")
    with pytest.raises(SystemExit):
        load_settings(DemoSettings)
    assert "KESTREL_DEMO_BATCH" in capsys.readouterr().err


def test_secret_not_in_repr(monkeypatch):
    monkeypatch.setenv("KESTREL_DEMO_KAFKA_SASL_PASSWORD", "hunter2")
    s = load_settings(DemoSettings)
    assert "hunter2" not in repr(s)
    assert s.kafka_sasl_password.get_secret_value() == "hunter2"


def test_service_mixins_share_fields_and_build_their_clients_config(monkeypatch):
    from kestrel.common.settings import ConsumerSettings, GrpcSettings

    class Service(KafkaSettings, GrpcSettings, ConsumerSettings):
        model_config = SettingsConfigDict(env_prefix="KESTREL_SVC_")
        grpc_port: int = 50099

    monkeypatch.setenv("KESTREL_SVC_MAX_BATCH", "17")
    monkeypatch.setenv("KESTREL_KAFKA_BOOTSTRAP", "shared:9092")  # the shared fallback reaches mixin fields
    s = Service()
    assert s.grpc_server().port == 50099 and s.consumer_options().max_batch == 17
    assert s.consumer_options().heartbeat_interval_ms == 1000 and s.kafka_bootstrap == "shared:9092"


def _api_settings():
    from kestrel.common.settings import GrpcSettings

    class Api(GrpcSettings):
        model_config = SettingsConfigDict(env_prefix="KESTREL_API_")

    return Api


def test_require_auth_without_tokens_refuses_to_start_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("KESTREL_API_REQUIRE_AUTH", "true")
    with pytest.raises(SystemExit):
        load_settings(_api_settings())
    [line] = [line for line in capsys.readouterr().err.splitlines() if "KESTREL_API_AUTH_TOKENS" in line]
    assert "require_auth" in line and "unauthenticated" in line


def test_require_auth_with_tokens_starts_and_an_empty_token_never_counts(monkeypatch, capsys):
    monkeypatch.setenv("KESTREL_API_REQUIRE_AUTH", "true")
    monkeypatch.setenv("KESTREL_API_AUTH_TOKENS", '["t0k3n"]')
    assert [t.get_secret_value() for t in load_settings(_api_settings()).auth_tokens] == ["t0k3n"]
    monkeypatch.setenv("KESTREL_API_AUTH_TOKENS", '["t0k3n", " "]')
    with pytest.raises(SystemExit):
        load_settings(_api_settings())
    assert "empty bearer token" in capsys.readouterr().err
    assert "t0k3n" not in repr(_api_settings()(auth_tokens=["t0k3n"]))
