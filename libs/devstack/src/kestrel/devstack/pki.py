"""A throwaway PKI for TLS tests and local TLS servers, made by the openssl command: a CA, a server certificate for
localhost and 127.0.0.1, and a client certificate."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kestrel.devstack.process import ComponentError


@dataclass(frozen=True)
class Pki:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"


def available() -> bool:
    return shutil.which("openssl") is not None


def make_pki(folder: Path, days: int = 2) -> Pki:
    """Writes ca.crt/key, server.crt/key (CN and SAN localhost, 127.0.0.1) and client.crt/key into `folder`."""
    if not available():
        raise ComponentError("pki", "the openssl command is needed to make test certificates")
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", str(days), "-subj", "/CN=kestrel-test-ca")  # fmt: skip
    _issue(folder, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n", days)
    _issue(folder, "client", "/CN=client", "extendedKeyUsage=clientAuth\n", days)
    return Pki(folder)


def _issue(folder: Path, name: str, subject: str, ext: str, days: int) -> None:
    _openssl(folder, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject)  # fmt: skip
    (folder / f"{name}.ext").write_text(ext)
    _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", str(days), "-extfile", f"{name}.ext")  # fmt: skip


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)
