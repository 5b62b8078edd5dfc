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
