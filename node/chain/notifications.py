"""Chain events for subscribers (WebSocket subscriptions, filters): new heads and pending txs.

Publishing happens on the event loop after a block commits; subscribers must be quick and
must not raise (a failing subscriber is logged and dropped, never allowed to stop the chain).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from eth.abc import BlockHeaderAPI

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A block now at the head; `local` when this node's engine committed it (not imported)."""

    block_hash: bytes
    header: BlockHeaderAPI
    tx_hashes: tuple[bytes, ...]
    local: bool = True


BlockListener = Callable[[CommittedBlock], None]
PendingListener = Callable[[bytes], None]


class ChainEvents:
    def __init__(self) -> None:
        self._block_listeners: list[BlockListener] = []
        self._pending_listeners: list[PendingListener] = []

    def on_block(self, listener: BlockListener) -> Callable[[], None]:
        self._block_listeners.append(listener)
        return lambda: self._discard(self._block_listeners, listener)

    def on_pending(self, listener: PendingListener) -> Callable[[], None]:
        self._pending_listeners.append(listener)
        return lambda: self._discard(self._pending_listeners, listener)

    @staticmethod
    def _discard(listeners: list, listener: object) -> None:
        if listener in listeners:
            listeners.remove(listener)

    def publish_block(self, block: CommittedBlock) -> None:
        for listener in list(self._block_listeners):
            try:
                listener(block)
            except Exception:
                log.exception("block listener failed; dropping it")
                self._discard(self._block_listeners, listener)

    def publish_pending(self, tx_hash: bytes) -> None:
        for listener in list(self._pending_listeners):
            try:
                listener(tx_hash)
            except Exception:
                log.exception("pending listener failed; dropping it")
                self._discard(self._pending_listeners, listener)
