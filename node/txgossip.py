"""Transaction gossip in batches: one p2p message per event-loop turn, not one per transaction.

A JSON-RPC batch of 200 raw transactions used to become 200 encrypted frames to every peer,
each relayed again by every receiver; batching makes it one message per peer. Transactions
that arrived by gossip are not gossiped again as new batches: the p2p host already relays
the batch they came in (once, de-duplicated by its digest).
"""

from __future__ import annotations

import asyncio
import logging

import rlp

from node.chain.chain import Chain
from node.p2p.host import P2PHost
from node.p2p.messages import MessageKind
from node.txpool.errors import TxPoolError
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

MAX_BATCH = 1000


class TransactionGossip:
    def __init__(self, p2p: P2PHost, pool: TxPool, chain: Chain) -> None:
        self.p2p = p2p
        self.pool = pool
        self.chain = chain
        self._outgoing: list[bytes] = []
        self._scheduled = False
        self._receiving = False
        p2p.subscribe(MessageKind.TX, self._on_message)

    def queue(self, pooled: PooledTransaction) -> None:
        """A transaction became pending here: send it with the others of this loop turn."""
        if self._receiving:
            return
        self._outgoing.append(pooled.raw)
        if len(self._outgoing) >= MAX_BATCH:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._outgoing:
            batch, self._outgoing = self._outgoing, []
            self.p2p.gossip(MessageKind.TX, rlp.encode(batch))

    def _on_message(self, peer: bytes, payload: bytes) -> bool:
        """Pool a peer's batch; relay it only if it held something new and valid here."""
        try:
            raws = rlp.decode(payload)
        except rlp.DecodingError:
            return False
        if not isinstance(raws, list) or len(raws) > MAX_BATCH:
            return False
        accepted = 0
        state = self.chain.state_at(self.chain.head)
        self._receiving = True
        try:
            for raw in raws:
                if not isinstance(raw, bytes):
                    return False
                try:
                    self.pool.add(raw, state)
                    accepted += 1
                except TxPoolError:
                    continue
        finally:
            self._receiving = False
        return accepted > 0
