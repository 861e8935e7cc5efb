"""The one way a signed transaction enters the node from a client: into the pool, admitted
against the head's state. `eth_sendRawTransaction` and REST's `POST /transactions` both relay
through here, so both refuse exactly what the pool refuses, with its reason.

A JSON-RPC batch of raw transactions is `prepare`d first: their stateless checks and sender
recovery start in worker processes (`node.txpool.prechecks`), and `submit_prepared` then
admits each, in the batch's order, with what its worker found. Without workers, or for a
transaction nobody prepared, it is all done here, with the same answers.

Admission reads the state at the committed head (`ChainReader.head`), not `Chain.tip`: a
client that has just read the receipt of the transfer that funded it, and sends from the
funded account, must not be told "insufficient funds" because the commit's thread has not
swapped `tip` yet (it did happen, in CI, under load).
"""

from __future__ import annotations

from collections.abc import Sequence

from node.chain.chain import Chain
from node.query.reader import ChainReader
from node.txpool.admission import AccountStateReader
from node.txpool.pool import TxPool
from node.txpool.prechecks import Precheck, Prechecks
from node.txpool.transaction import PooledTransaction

Prepared = list[tuple[bytes, Precheck]]
"""What one `prepare` started, for its `release`."""


class Relay:
    def __init__(self, chain: Chain, pool: TxPool, prechecks: Prechecks | None = None) -> None:
        self.chain = chain
        self.reader = ChainReader(chain)
        self.pool = pool
        self.prechecks = prechecks
        self._prepared: dict[bytes, Precheck] = {}

    def submit(self, raw: bytes) -> PooledTransaction:
        """Admit the signed transaction `raw`, or raise the pool's `TxPoolError`."""
        return self.pool.add(raw, self._committed_state())

    def prepare(self, raws: Sequence[bytes]) -> Prepared:
        """Start the stateless checks of `raws` in the workers, if there are any and they are
        up; what is started is kept for `submit_prepared` until `release`d."""
        if self.prechecks is None:
            return []
        fresh = list(dict.fromkeys(raw for raw in raws if raw not in self._prepared))
        prechecks = self.prechecks.check(fresh, self.pool.rules) if fresh else None
        if prechecks is None:
            return []
        started = list(zip(fresh, prechecks, strict=True))
        self._prepared.update(started)
        return started

    def release(self, started: Prepared) -> None:
        """Forget what `prepare` started and nobody submitted (a batch cut short)."""
        for raw, precheck in started:
            if self._prepared.get(raw) is precheck:
                del self._prepared[raw]
                precheck.cancel()

    async def submit_prepared(self, raw: bytes) -> PooledTransaction:
        """`submit`, using the workers' checks of `raw` if it was prepared."""
        precheck = self._prepared.pop(raw, None)
        checked = None if precheck is None else await precheck.result()
        return self.pool.add(raw, self._committed_state(), checked=checked)

    def _committed_state(self) -> AccountStateReader:
        return self.chain.state_at(self.reader.head().header)
