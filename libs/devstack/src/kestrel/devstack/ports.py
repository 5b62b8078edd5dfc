"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import asyncio
import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it); bind soon, another process may take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT still counts as free for them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int | None = None) -> int:
    """`preferred` when it is free (stable endpoints across restarts), else any free port."""
    if preferred and is_free(preferred):
        return preferred
    return free_port()


async def wait_connectable(port: int) -> None:
    """Raise unless something accepts TCP connections on `port` (cheap, and keeps client libraries quiet)."""
    _, writer = await asyncio.open_connection(HOST, port)
    writer.close()
    await writer.wait_closed()
