"""A PostgreSQL server process on a TCP port, run as an unprivileged user when we are root."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from kestrel.devstack.ports import HOST, pick_port, wait_connectable
from kestrel.devstack.process import ComponentError, ServerProcess, run_once

OS_USER = "kestrel"
"""PostgreSQL refuses to run as root; this system account runs it then."""

# A throwaway development database: durability traded for speed (tests create and drop a lot).
_DEV_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def find_bin_dir() -> Path:
    """$KESTREL_PG_BIN, else the newest /usr/lib/postgresql/<major>/bin, else wherever pg_ctl is on PATH."""
    if env := os.environ.get("KESTREL_PG_BIN"):
        return Path(env)
    majors = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p).parent.name.isdigit()]
    if majors:
        return max(majors, key=lambda p: int(p.parent.name))
    if pg_ctl := shutil.which("pg_ctl"):
        return Path(pg_ctl).parent
    raise ComponentError("postgres", "PostgreSQL binaries not found; run scripts/bootstrap.sh or set KESTREL_PG_BIN")


def ensure_os_user(name: str = OS_USER) -> pwd.struct_passwd:
    """The unprivileged account for the server, created once (as a system user) when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=False,
            capture_output=True,
        )
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise ComponentError("postgres", f"could not create the system user {name!r} (useradd failed)") from exc


class PostgresServer(ServerProcess):
    """postgres on 127.0.0.1:`port` with trust auth; cluster in `<state_dir>/postgres/data`."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients to disconnect
    stop_grace = 20.0

    def __init__(
        self, state_dir: Path, port: int | None = None, database: str = "kestrel", bin_dir: Path | None = None
    ) -> None:
        super().__init__(state_dir)
        self.port = pick_port(port)
        self.database = database
        self.user = "kestrel"
        self.bin_dir = bin_dir
        self._account: pwd.struct_passwd | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{self.database}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    async def start(self) -> None:
        await super().start()
        await self._ensure_database()

    async def _prepare(self) -> None:
        self.bin_dir = self.bin_dir or find_bin_dir()
        if os.geteuid() == 0:
            self._account = ensure_os_user()
            _check_reachable(self.home, self._account)
        if not (self.data_dir / "PG_VERSION").exists():
            await self._initdb()

    async def _initdb(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(mode=0o700)
        if self._account is not None:
            os.chown(self.data_dir, self._account.pw_uid, self._account.pw_gid)
        argv = [self._tool("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust"]
        argv += ["-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        await run_once(self.name, argv, self.log_path, **self._popen_options())

    def _command(self) -> list[str]:
        settings = {"port": str(self.port), "listen_addresses": HOST, "unix_socket_directories": "", **_DEV_SETTINGS}
        argv = [self._tool("postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _tool(self, name: str) -> str:
        assert self.bin_dir is not None, "_prepare finds the binaries first"
        return str(self.bin_dir / name)

    def _popen_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"cwd": self.home}
        if self._account is not None:
            options.update(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        return options

    async def _probe(self) -> None:
        await wait_connectable(self.port)
        conn = await asyncpg.connect(host=HOST, port=self.port, user=self.user, database="postgres", timeout=2)
        await conn.close()

    async def _ensure_database(self) -> None:
        conn = await asyncpg.connect(host=HOST, port=self.port, user=self.user, database="postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database):
                await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()


def _check_reachable(path: Path, account: pwd.struct_passwd) -> None:
    """Fail early and clearly when the server's user cannot walk down to its data directory."""
    for folder in [*reversed(path.resolve().parents), path.resolve()]:
        if not folder.exists():
            break
        info = folder.stat()
        if info.st_uid != account.pw_uid and not info.st_mode & 0o001:
            raise ComponentError(
                "postgres",
                f"PostgreSQL runs as user {account.pw_name!r}, which cannot enter {folder}; "
                "make it world-searchable (chmod o+x) or use a state dir elsewhere",
            )
