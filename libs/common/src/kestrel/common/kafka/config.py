"""Translate KafkaSettings into the option dialects of confluent-kafka and aiokafka."""

from __future__ import annotations

import ssl
from typing import Any

from kestrel.common.settings import KafkaSettings


def librdkafka_config(s: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """Options for confluent-kafka (librdkafka property names)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": s.kafka_bootstrap,
        "security.protocol": s.kafka_security_protocol,
        "linger.ms": s.kafka_linger_ms,
    }
    if s.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = s.kafka_sasl_mechanism
        conf["sasl.username"] = s.kafka_sasl_username or ""
        conf["sasl.password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
    for key, value in (
        ("ssl.ca.location", s.kafka_ssl_cafile),
        ("ssl.certificate.location", s.kafka_ssl_certfile),
        ("ssl.key.location", s.kafka_ssl_keyfile),
    ):
        if value:
            conf[key] = value
    conf.update(extra)
    return conf


def aiokafka_config(s: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients."""
    conf: dict[str, Any] = {"bootstrap_servers": s.kafka_bootstrap, "security_protocol": s.kafka_security_protocol}
    if s.kafka_sasl_mechanism:
        conf["sasl_mechanism"] = s.kafka_sasl_mechanism
        conf["sasl_plain_username"] = s.kafka_sasl_username
        conf["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
    if s.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=s.kafka_ssl_cafile)
        if s.kafka_ssl_certfile:
            context.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile)
        conf["ssl_context"] = context
    conf.update(extra)
    return conf
