"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

HOST = "127.0.0.1"

# Ports handed to servers come from below the kernel's ephemeral range. A port from bind(0) is an
# ephemeral one, and any outgoing connection (a Kafka or Redis client in the next process) may take it as
# its local port before the server gets to bind it; in CI one did, and a replica never came up.
LOW = 10_000
_EPHEMERAL_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default when unreadable)."""
    try:
        low, high = (int(p) for p in _EPHEMERAL_FILE.read_text().split())
    except (OSError, ValueError):
        return 32_768, 60_999
    return low, high


def free_port() -> int:
    """A port nobody holds right now, outside the ephemeral range; bind soon, another process may take it."""
    low, high = ephemeral_range()
    ranges = [r for r in ((LOW, low), (high + 1, 65_536)) if r[1] - r[0] >= 1_000]
    for _ in range(200):
        if not ranges:
            break
        start, stop = random.choice(ranges)
        port = random.randrange(start, stop)
        # Strict (any address, no SO_REUSEADDR): a port in TIME_WAIT is not handed to a new server either.
        if port not in _handed and _binds("0.0.0.0", port, reuse_address=False):
            _handed.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room outside it: the OS picks
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def is_free(port: int) -> bool:
    # Servers set SO_REUSEADDR too, so a port in TIME_WAIT still counts as free for them.
    return _binds(HOST, port, reuse_address=True)


def _binds(host: str, port: int, reuse_address: bool) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
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
