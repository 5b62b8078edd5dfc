"""Kafka SASL_SSL from settings: both clients' dialects, checked against the clients themselves (confluent-kafka
validates its property names; aiokafka's SSL context does a real TLS handshake with a server from a test CA)."""

from __future__ import annotations

import asyncio
import ssl

import confluent_kafka
import pytest
from pydantic_settings import SettingsConfigDict

from kestrel.common.health import server_tls
from kestrel.common.kafka import aiokafka_config, librdkafka_config
from kestrel.common.settings import KafkaSettings


class Svc(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_SVC_")


@pytest.fixture
def sasl_ssl(monkeypatch, pki) -> Svc:
    for key, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "kestrel",
        "KAFKA_SASL_PASSWORD": "k4fka-s3cret",
        "KAFKA_SSL_CAFILE": str(pki / "ca.crt"),
    }.items():
        monkeypatch.setenv(f"KESTREL_SVC_{key}", value)
    return Svc()


def test_librdkafka_gets_sasl_ssl_and_accepts_the_properties(sasl_ssl, pki):
    conf = librdkafka_config(sasl_ssl)
    assert {k: conf[k] for k in ("security.protocol", "sasl.mechanism", "sasl.username", "ssl.ca.location")} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "kestrel",
        "ssl.ca.location": str(pki / "ca.crt"),
    }
    assert conf["sasl.password"] == "k4fka-s3cret"
    confluent_kafka.Producer(conf)  # raises KafkaException on an unknown or invalid property


def test_aiokafka_gets_sasl_and_a_verifying_ssl_context(sasl_ssl):
    conf = aiokafka_config(sasl_ssl)
    assert (conf["security_protocol"], conf["sasl_mechanism"], conf["sasl_plain_username"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "kestrel",
    )
    assert conf["sasl_plain_password"] == "k4fka-s3cret"
    context = conf["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_the_ssl_context_trusts_the_configured_ca_and_nothing_else(sasl_ssl, pki, tmp_path):
    from kestrel.devstack.pki import make_pki

    server = await asyncio.start_server(
        lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_tls(str(pki / "server.crt"), str(pki / "server.key"))
    )
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=aiokafka_config(sasl_ssl)["ssl_context"], server_hostname="localhost"
        )
        writer.close()
        stranger = Svc(kafka_security_protocol="SSL", kafka_ssl_cafile=str(make_pki(tmp_path / "other").ca))
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=aiokafka_config(stranger)["ssl_context"], server_hostname="localhost"
            )
    finally:
        server.close()
        await server.wait_closed()
