"""QBFT with a single validator (dev mode): each block is sealed by the node's own key.

The block layout is exactly what a one-validator Besu QBFT network produces: coinbase = the
validator, extraData = [vanity, [validator], no vote, round 0, [its commit seal]], block hash
excluding the seals. Blocks are made every `block_period` seconds while transactions wait;
while the next one comes due, what the pool holds is executed into it
(`node.consensus.speculation`), so when its time comes only the latest arrivals are left.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, cast

from node.chain.admitted import AdmittedTransaction
from node.chain.chain import Chain, PendingBlock
from node.chain.notifications import ChainEvents, CommittedBlock
from node.consensus.qbft.state_machine import proposal_timestamp
from node.consensus.speculation import (
    SPECULATION_MARGIN_SECONDS,
    SPECULATION_POLL_SECONDS,
    Speculation,
    finish_or_build,
    speculation_on_head,
)
from node.qbftheader.extra_data import VANITY_LENGTH, QbftExtraData
from node.qbftheader.hashing import sign_commit_seal
from node.signer import NodeSigner
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


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
            timestamp = proposal_timestamp(self.chain.head, self.block_period, self.clock())
            try:
                speculation = await self._execute_until(timestamp)
                selected = self._select()
                if not selected and speculation is None:
                    self._work.clear()
                    continue
                await self._produce(selected, timestamp, speculation)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("block production failed; retrying after one block period")
                await asyncio.sleep(self.block_period)

    def _select(self) -> list[PooledTransaction]:
        head = self.chain.head
        return self.pool.select(head.gas_limit, self.chain.child_base_fee(head))

    async def _execute_until(self, timestamp: int) -> Speculation | None:
        """Execute what the pool holds into the next block while its time comes, again as
        more arrives (`node.consensus.speculation`): at `timestamp` only the latest arrivals
        are left to execute. None if the pool stayed empty."""
        speculation: Speculation | None = None
        taken = -1
        while (left := self._time_left(timestamp)) > 0:
            selected = self._select() if self.pool.arrivals != taken else []
            taken = self.pool.arrivals
            if selected:
                until = time.monotonic() + left
                speculation = await self._locked(
                    self._speculate, speculation, selected, timestamp, until
                )
            await asyncio.sleep(max(0.0, min(SPECULATION_POLL_SECONDS, self._time_left(timestamp))))
        return speculation

    def _time_left(self, timestamp: int) -> float:
        """Seconds early execution may still take before the block due at `timestamp`."""
        return timestamp - self.clock() - SPECULATION_MARGIN_SECONDS

    async def _locked(self, work: Callable[[*_Args], _T], *args: *_Args) -> _T:
        """Run `work` in a worker thread under the chain lock; a stop waits for it to end,
        so the store is never closed under a block being written."""
        async with self._chain_lock:
            running = asyncio.get_running_loop().run_in_executor(None, work, *args)
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                await asyncio.wait([running])
                raise

    def _speculate(
        self,
        speculation: Speculation | None,
        selected: list[PooledTransaction],
        timestamp: int,
        until: float,
    ) -> Speculation:
        speculation = speculation_on_head(
            self.chain,
            speculation,
            timestamp=timestamp,
            coinbase=self.address,
            extra_data=lambda: self._extra().encode(),
        )
        speculation.apply(selected, math.inf, until)
        return speculation

    async def _produce(
        self,
        selected: list[PooledTransaction],
        timestamp: int,
        speculation: Speculation | None,
    ) -> None:
        pending, block_hash, ahead = await self._locked(
            self._build_and_commit, selected, timestamp, speculation
        )
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
            "sealed block %d hash=%s txs=%d gas=%d, %d txs executed ahead of it",
            header.block_number,
            block_hash.hex()[:16],
            len(included),
            header.gas_used,
            ahead,
        )
        self.events.publish_block(CommittedBlock(block_hash, header, included))

    def _extra(self) -> QbftExtraData:
        return QbftExtraData(
            vanity=self.chain.genesis.vanity.rjust(VANITY_LENGTH, b"\x00"),
            validators=self.chain.validator_tally(self.chain.head_hash).validators,
            vote=None,
            round=0,
            seals=(),
        )

    def _build_and_commit(
        self,
        selected: list[PooledTransaction],
        timestamp: int,
        speculation: Speculation | None,
    ) -> tuple[PendingBlock, bytes | None, int]:
        """Build (or finish the block opened early), seal and commit; a block whose every
        candidate proved invalid is not kept. Also returns how many transactions were
        executed before the block came due."""
        extra = self._extra()
        pending, ahead = finish_or_build(
            self.chain,
            speculation,
            selected,
            timestamp=timestamp,
            coinbase=self.address,
            extra_data=extra.encode(),
            budget=math.inf,
        )
        if not pending.executed.transactions:
            return pending, None, ahead
        seal = sign_commit_seal(pending.header, 0, self.key)
        sealed_extra = QbftExtraData(extra.vanity, extra.validators, None, 0, (seal,))
        sealed = pending.header.copy(extra_data=sealed_extra.encode())
        return pending, self.chain.commit(pending, sealed), ahead
