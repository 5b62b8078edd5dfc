"""Free-port helpers."""

from __future__ import annotations

import socket

from kestrel.devstack.ports import HOST, free_port, is_free, pick_port


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((HOST, port))


def test_a_listening_port_is_not_free_and_is_not_picked() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not is_free(taken)
        assert pick_port(taken) != taken


def test_a_free_preferred_port_is_kept() -> None:
    port = free_port()
    assert pick_port(port) == port
