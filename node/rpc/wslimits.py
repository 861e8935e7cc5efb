"""How many WebSocket connections a listener holds: in all, and per client address.

Each connection costs a task, an outbox and its subscriptions; without a cap one client could
open thousands (geth has none either, but sits behind proxies that do). A connection over
either limit is accepted and closed at once with code 1013 ("try again later") and a reason
naming the limit, so a client sees why instead of a bare failed handshake.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

TRY_AGAIN_LATER = 1013


@dataclass
class WsLimits:
    """Open connections of one listener; `admit` before serving, `release` after."""

    max_connections: int = 1000
    max_per_address: int = 100
    _open: Counter[str] = field(default_factory=Counter)

    def admit(self, address: str) -> str | None:
        """Count the connection in and return None, or return why it is refused."""
        if sum(self._open.values()) >= self.max_connections:
            return f"too many WebSocket connections (max {self.max_connections})"
        if self._open[address] >= self.max_per_address:
            return f"too many WebSocket connections from {address} (max {self.max_per_address})"
        self._open[address] += 1
        return None

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
