"""PostgreSQL command line and the reachability check for the unprivileged server user."""

from __future__ import annotations

import os
import pwd
import tempfile
from pathlib import Path

import pytest

from kestrel.devstack.ports import free_port
from kestrel.devstack.postgres import PostgresServer, _check_reachable
from kestrel.devstack.process import ComponentError


def test_listens_on_loopback_tcp_only(tmp_path: Path) -> None:
    port = free_port()  # a fixed number would be replaced whenever something else holds it
    server = PostgresServer(tmp_path, port=port, bin_dir=Path("/pg/bin"))
    argv = server._command()
    assert argv[:3] == ["/pg/bin/postgres", "-D", str(tmp_path / "postgres" / "data")]
    settings = dict(a.split("=", 1) for a in argv[3:] if a != "-c")
    assert settings["port"] == str(port)
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["unix_socket_directories"] == ""
    assert server.dsn == f"postgresql://kestrel@127.0.0.1:{port}/kestrel"


def test_a_private_parent_directory_is_reported() -> None:
    nobody = pwd.struct_passwd(("nobody-test", "x", os.getuid() + 12345, 0, "", "/", "/bin/false"))
    with tempfile.TemporaryDirectory() as top:
        Path(top).chmod(0o755)
        private = Path(top) / "private"
        (private / "state").mkdir(parents=True)
        private.chmod(0o700)
        _check_reachable(Path(top), nobody)
        with pytest.raises(ComponentError, match=r"cannot enter .*private"):
            _check_reachable(private / "state", nobody)
