"""Shared fixtures of kestrel-common's tests: a throwaway PKI made by openssl (a CA, a server and a client cert)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.devstack.pki import make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki")).folder
