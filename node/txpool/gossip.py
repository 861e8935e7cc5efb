"""Transaction gossip in batches: one p2p message per event-loop turn, not one per transaction.

A JSON-RPC batch of 200 raw transactions used to become 200 encrypted frames to every peer,
each relayed again by every receiver; batching makes it one message per peer. Transactions
that arrived by gossip are not gossiped again as new batches: the p2p host already relays
the batch they came in (once, de-duplicated by its digest).

Admitting a received batch (decoding, recovering every sender) costs tens of milliseconds,
and a burst of submissions brings dozens of batches at once. Admitted inside the p2p handler,
they held up everything behind them on the same link, consensus messages included: a
proposal could wait most of a second, and the round time out. So the handler only files the
batch; a background task admits the transactions a few at a time, letting the event loop
serve other messages in between.

A peer that connects is sent every transaction pending here, as geth syncs transactions with
a new peer. Otherwise a transaction admitted while its node had no link (peers down, or not
yet dialled after a restart that restored it from the journal) would never reach a validator.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import rlp

from node.chain.chain import Chain
from node.p2p.host import P2PHost
from node.p2p.messages import MessageKind
from node.p2p.peer import Peer
from node.txpool.admission import transaction_hash
from node.txpool.errors import TxPoolError
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

MAX_BATCH = 1000
ADMIT_CHUNK = 16
"""Gossiped transactions admitted per event-loop turn (a few milliseconds of work)."""


class TransactionGossip:
    def __init__(self, p2p: P2PHost, pool: TxPool, chain: Chain) -> None:
        self.p2p = p2p
        self.pool = pool
        self.chain = chain
        self._outgoing: list[bytes] = []
        self._scheduled = False
        self._receiving = False
        self._incoming: deque[bytes] = deque()
        self._admitting: asyncio.Task[None] | None = None
        p2p.subscribe(MessageKind.TX, self._on_message)
        p2p.on_peer_connected(self._on_connected)

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

    def _on_connected(self, peer: Peer) -> None:
        """Send a new peer what is pending here, in batches of `MAX_BATCH`."""
        batch: list[bytes] = []
        for pooled in self.pool.pending_transactions():
            batch.append(pooled.raw)
            if len(batch) == MAX_BATCH:
                self.p2p.send(peer.address, MessageKind.TX, rlp.encode(batch))
                batch = []
        if batch:
            self.p2p.send(peer.address, MessageKind.TX, rlp.encode(batch))

    def _flush(self) -> None:
        self._scheduled = False
        if self._outgoing:
            batch, self._outgoing = self._outgoing, []
            self.p2p.gossip(MessageKind.TX, rlp.encode(batch))

    def _on_message(self, peer: bytes, payload: bytes) -> bool:
        """File a peer's batch for admission; relay it only if it held something new here."""
        try:
            raws = rlp.decode(payload)
        except rlp.DecodingError:
            return False
        if not isinstance(raws, list) or len(raws) > MAX_BATCH:
            return False
        if not all(isinstance(raw, bytes) for raw in raws):
            return False
        new = [raw for raw in raws if self.pool.get(transaction_hash(raw)) is None]
        if not new:
            return False
        self._incoming.extend(new)
        if self._admitting is None or self._admitting.done():
            self._admitting = asyncio.get_running_loop().create_task(self._admit())
        return True

    async def _admit(self) -> None:
        """Admit filed transactions, `ADMIT_CHUNK` per event-loop turn."""
        while self._incoming:
            state = self.chain.state_at(self.chain.head)
            self._receiving = True
            try:
                for _ in range(min(ADMIT_CHUNK, len(self._incoming))):
                    try:
                        self.pool.add(self._incoming.popleft(), state)
                    except TxPoolError:
                        continue
            finally:
                self._receiving = False
            await asyncio.sleep(0)
