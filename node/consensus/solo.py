"""QBFT with a single validator (dev mode): each block is sealed by the node's own key.

The block layout is exactly what a one-validator Besu QBFT network produces: coinbase = the
validator, extraData = [vanity, [validator], no vote, round 0, [its commit seal]], block hash
excluding the seals. Blocks are made every `block_period` seconds while transactions wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

from node.chain.admitted import AdmittedTransaction
from node.chain.chain import Chain, PendingBlock
from node.chain.notifications import ChainEvents, CommittedBlock
from node.qbftheader.extra_data import VANITY_LENGTH, QbftExtraData
from node.qbftheader.hashing import sign_commit_seal
from node.signer import NodeSigner
from node.txpool.pool import TxPool

log = logging.getLogger(__name__)


class SoloValidator:
    """Builds, seals and commits blocks for a chain whose only validator is this node."""

    def __init__(
        self,
        chain: Chain,
        pool: TxPool,
        events: ChainEvents,
        key: NodeSigner,
        block_period: int,
        clock: Callable[[], float] = time.time,
        chain_lock: asyncio.Lock | None = None,
    ) -> None:
        self.chain = chain
        self.pool = pool
        self.events = events
        self.key = key
        self.address = key.public_key.to_canonical_address()
        self.block_period = block_period
        self.clock = clock
        self._work = asyncio.Event()
        self._chain_lock = chain_lock or asyncio.Lock()
        if self.address not in chain.genesis.validators:
            raise ValueError("this node's key is not the chain's validator")

    def transactions_pending(self) -> None:
        self._work.set()

    async def run(self) -> None:
        if self.pool.stats().get("pending", 0):
            self._work.set()
        while True:
            await self._work.wait()
            delay = self.chain.head.timestamp + self.block_period - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            selected = self.pool.select(
                self.chain.head.gas_limit, self.chain.child_base_fee(self.chain.head)
            )
            if not selected:
                self._work.clear()
                continue
            try:
                await self._produce(selected)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("block production failed; retrying after one block period")
                await asyncio.sleep(self.block_period)

    async def _produce(self, selected: list) -> None:
        timestamp = max(int(self.clock()), self.chain.head.timestamp + self.block_period)
        transactions = [item.admitted for item in selected]
        async with self._chain_lock:
            work = asyncio.get_running_loop().run_in_executor(
                None, self._build_and_commit, transactions, timestamp
            )
            try:
                pending, block_hash = await asyncio.shield(work)
            except asyncio.CancelledError:
                # Stopping: let the commit finish before the store is closed under it.
                await asyncio.wait([work])
                raise
        for item, reason in pending.executed.skipped:
            # Skipped items are the ones handed to `build`: admitted transactions, all of them.
            dropped = self.pool.drop_invalid(cast(AdmittedTransaction, item).hash)
            if dropped is not None:
                log.info("dropped %s at execution: %s", dropped.hash.hex(), reason)
        if block_hash is None:
            return
        included = tuple(item.tx_hash for item in pending.executed.transactions)
        self.pool.on_new_block(included, self.chain.state_at(self.chain.head))
        header = self.chain.head
        log.info(
            "sealed block %d hash=%s txs=%d gas=%d",
            header.block_number,
            block_hash.hex()[:16],
            len(included),
            header.gas_used,
        )
        self.events.publish_block(CommittedBlock(block_hash, header, included))

    def _build_and_commit(
        self, transactions: list[AdmittedTransaction], timestamp: int
    ) -> tuple[PendingBlock, bytes | None]:
        """Build, seal and commit; a block whose every candidate proved invalid is not kept."""
        extra = QbftExtraData(
            vanity=self.chain.genesis.vanity.rjust(VANITY_LENGTH, b"\x00"),
            validators=self.chain.validator_tally(self.chain.head_hash).validators,
            vote=None,
            round=0,
            seals=(),
        )
        pending = self.chain.build(
            transactions,
            timestamp=timestamp,
            coinbase=self.address,
            extra_data=extra.encode(),
        )
        if not pending.executed.transactions:
            return pending, None
        seal = sign_commit_seal(pending.header, 0, self.key)
        sealed_extra = QbftExtraData(extra.vanity, extra.validators, None, 0, (seal,))
        sealed = pending.header.copy(extra_data=sealed_extra.encode())
        return pending, self.chain.commit(pending, sealed)
