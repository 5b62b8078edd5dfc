"""Logging: JSON output, context binding, and secrets never printed."""

import json
import logging

import structlog

from kestrel.common.logs import configure_logging


def test_json_lines_mask_secrets(capsys):
    configure_logging("demo", fmt="json")
    structlog.get_logger().info("connected", sasl_password="hunter2", api_token="abc", user="bob")
    logging.getLogger("aiokafka").warning("stdlib line")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "connected" and lines[0]["service"] == "demo"
    assert lines[0]["sasl_password"] == "***" and lines[0]["api_token"] == "***" and lines[0]["user"] == "bob"
    assert lines[1]["event"] == "stdlib line" and lines[1]["logger"] == "aiokafka"
    structlog.contextvars.clear_contextvars()


def test_passwords_inside_urls_and_bearer_tokens_never_reach_a_line(capsys):
    configure_logging("demo", fmt="json")
    log = structlog.get_logger()
    log.warning("redis down at redis://:hunter2@cache:6379/0", target="postgresql://kestrel:pg-pass@db:5432/k")
    logging.getLogger("grpc").warning("rejected header authorization: Bearer tok-123")
    try:
        raise ConnectionError("cannot reach rediss://app:s3cr3t@cache:6380")
    except ConnectionError:
        log.exception("probe_failed")
    err = capsys.readouterr().err
    structlog.contextvars.clear_contextvars()
    for secret in ("hunter2", "pg-pass", "tok-123", "s3cr3t"):
        assert secret not in err
    assert "redis://:***@cache:6379/0" in err and "postgresql://kestrel:***@db:5432/k" in err
    assert "Bearer ***" in err and "rediss://app:***@cache:6380" in err


def test_a_failed_start_prints_its_one_line_without_the_password(capsys):
    from kestrel.common.runtime.runner import _fail

    assert _fail("demo", "postgres not reachable: postgresql://kestrel:pg-pass@db/k refused") == 1
    assert capsys.readouterr().err == "kestrel-demo: postgres not reachable: postgresql://kestrel:***@db/k refused\n"


def test_lines_below_the_level_are_dropped_and_the_rest_kept(capsys):
    configure_logging("demo", fmt="json", level="INFO")
    log = structlog.get_logger("levels")
    log.debug("hidden", n=1)
    log.info("shown", n=2)
    logging.getLogger("levels").setLevel(logging.DEBUG)  # a logger turned up at run time shows its debug lines
    log.debug("now shown", n=3)
    logging.getLogger("levels").setLevel(logging.NOTSET)
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["shown", "now shown"]
    structlog.contextvars.clear_contextvars()
