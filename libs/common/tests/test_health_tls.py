"""The HTTP health endpoint over TLS, asked by a real TLS client as the kubelet's `scheme: HTTPS` probe asks it."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path

import pytest

from kestrel.common.health import HealthEndpoint, server_tls
from kestrel.devstack.ports import free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


async def _get(port: int, path: str, tls: ssl.SSLContext | None) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None
    )
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


@pytest.fixture
async def endpoint(pki: Path):
    health = HealthEndpoint(
        free_port(),
        {"/healthz": lambda: True, "/readyz": lambda: False},
        host="127.0.0.1",
        tls=server_tls(str(pki / "server.crt"), str(pki / "server.key")),
    )
    await health.start()
    yield health
    await health.stop()


async def test_https_answers_a_client_that_verifies_the_certificate(endpoint, pki):
    client = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    assert (await _get(endpoint.port, "/healthz", client)).startswith(b"HTTP/1.1 200 OK")
    assert (await _get(endpoint.port, "/readyz", client)).startswith(b"HTTP/1.1 503")


async def test_the_kubelet_way_without_verification_works_too(endpoint):
    kubelet = ssl.create_default_context()
    kubelet.check_hostname, kubelet.verify_mode = False, ssl.CERT_NONE
    assert (await _get(endpoint.port, "/healthz", kubelet)).startswith(b"HTTP/1.1 200 OK")


async def test_plaintext_gets_no_http_answer(endpoint):
    try:
        answer = await _get(endpoint.port, "/healthz", None)
    except (ConnectionError, asyncio.IncompleteReadError):
        answer = b""
    assert not answer.startswith(b"HTTP/")


def test_no_certificate_means_plain_http():
    assert server_tls(None, None) is None
