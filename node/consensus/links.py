"""What the QBFT engine needs from the network and from block sync, and nothing more.

`QbftEngine` is written against these protocols rather than `P2PHost` and `BlockSync`, so
the engine's dependencies are visible in one place and a test can drive it over anything
that delivers messages (the p2p host and block sync implement them as they are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol


class Linked(Protocol):
    """A connected peer, as far as consensus cares: who it is."""

    @property
    def address(self) -> bytes: ...


MessageHandler = Callable[[bytes, bytes], bool]
"""`handler(peer_address, payload)`; False stops the host relaying a gossiped message."""


class ConsensusLinks(Protocol):
    """Message delivery between validators (implemented by `node.p2p.host.P2PHost`)."""

    def subscribe(self, kind: int, handler: MessageHandler) -> Callable[[], None]:
        """Deliver messages of `kind` to `handler`; returns an unsubscribe."""
        ...

    def on_peer_connected(self, listener: Callable[[Linked], None]) -> None: ...

    def on_peer_disconnected(self, listener: Callable[[Linked], None]) -> None: ...

    def peers(self) -> Sequence[Linked]:
        """The peers linked now."""
        ...

    def gossip(self, kind: int, payload: bytes, origin: bytes | None = None) -> bool:
        """Send this node's own message to every peer (once: repeats are dropped)."""
        ...

    def broadcast(self, kind: int, payload: bytes, exclude: Iterable[bytes] = ()) -> int:
        """Send to every peer not in `exclude` (a relay of someone else's message)."""
        ...

    def send(self, peer: bytes, kind: int, payload: bytes) -> bool:
        """Send to one peer; False if it is not linked."""
        ...


class ConsensusSync(Protocol):
    """Block download the engine asks for (implemented by `node.sync.BlockSync`)."""

    def head_hint(self, peer: bytes, number: int) -> None:
        """`peer` spoke of height `number`: it probably has the blocks below it."""
        ...

    def want(self, number: int) -> None:
        """Validators are past block `number`: fetch blocks up to it."""
        ...
