"""The one way a signed transaction enters the node from a client: into the pool, admitted
against the head's state. `eth_sendRawTransaction` and REST's `POST /transactions` both relay
through here, so both refuse exactly what the pool refuses, with its reason."""

from __future__ import annotations

from node.chain.chain import Chain
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction


class Relay:
    def __init__(self, chain: Chain, pool: TxPool) -> None:
        self.chain = chain
        self.pool = pool

    def submit(self, raw: bytes) -> PooledTransaction:
        """Admit the signed transaction `raw`, or raise the pool's `TxPoolError`."""
        return self.pool.add(raw, self.chain.state_at(self.chain.head))
