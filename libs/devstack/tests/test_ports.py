"""Free-port helpers."""

from __future__ import annotations

import socket

from kestrel.devstack.ports import HOST, ephemeral_range, free_port, is_free, pick_port


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


def test_free_ports_are_outside_the_range_outgoing_connections_take_theirs_from() -> None:
    low, high = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50  # none handed out twice
    assert not [p for p in ports if low <= p <= high]
