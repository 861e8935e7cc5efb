"""The dev node's validator executes pending transactions while its next block comes due.

A real `SoloValidator` over a real chain and pool, on the real clock: transactions that arrive
after a block are executed into the next one while it waits, and the block it seals when its
time comes holds them, each once, with the state a block built at that moment would have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from eth_keys.datatypes import PrivateKey
from eth_typing import Address

from node.chain.chain import Chain
from node.chain.genesis import dev_genesis
from node.chain.notifications import ChainEvents
from node.consensus.solo import SoloValidator
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool
from tests.test_chain import RECIPIENT, transfers

KEY = PrivateKey(b"\x05" * 32)
BLOCK_PERIOD = 2
"""Two seconds, so the block after the first is at least a second away when work arrives."""


async def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def test_transactions_arriving_between_blocks_are_executed_before_the_next_is_due(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = Chain(ChainStore(MemoryStore()), dev_genesis(KEY.public_key.to_canonical_address()))
    pool = TxPool(PoolConfig(), AdmissionRules(chain_id=chain.chain_id, block_gas_limit=10**9))
    solo = SoloValidator(chain, pool, ChainEvents(), KEY, block_period=BLOCK_PERIOD)
    first, later = transfers(8)[:4], transfers(8)[4:]

    async def scenario() -> None:
        running = asyncio.create_task(solo.run())
        try:
            for tx in first:
                pool.add(tx.encode(), chain.state_at(chain.head))
            solo.transactions_pending()
            await wait_for(lambda: chain.head.block_number == 1)
            for tx in later:
                pool.add(tx.encode(), chain.state_at(chain.head))
            solo.transactions_pending()
            await wait_for(lambda: "sealed block 2 " in caplog.text)  # logged after the commit
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    with caplog.at_level(logging.INFO, logger="node.consensus.solo"):
        asyncio.run(scenario())

    assert f"txs={len(later)} gas={21_000 * len(later)}, {len(later)} txs executed ahead" in (
        caplog.text
    )
    parent = chain.header_by_number(1)
    assert parent is not None and chain.head.timestamp == parent.timestamp + BLOCK_PERIOD
    assert chain.store.block_tx_hashes(chain.head_hash) == [tx.hash for tx in later]
    paid = chain.state_at(chain.head).get_balance(Address(bytes.fromhex(RECIPIENT[2:])))
    assert paid == sum(tx.value for tx in first + later)
    assert len(pool) == 0
