"""Free loopback ports for the nodes a localnet or a test starts.

Asking the kernel for port 0 hands out a port from its ephemeral range, the same range it draws
from for every outgoing connection. A node that is started a moment later on such a port can
find it taken by a peer's dial (validators redial every second or two), fail to bind and exit.
Ports picked below the ephemeral range are never handed to outgoing connections, and each is
handed out once per process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000
_handed_out: set[int] = set()


def _below_ephemeral() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that were free a moment ago and that no outgoing
    connection will take."""
    ceiling = _below_ephemeral()
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(_LOWEST, ceiling)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        ports.append(port)
    return ports


def free_port() -> int:
    """One port as `free_ports` picks them."""
    return free_ports(1)[0]
