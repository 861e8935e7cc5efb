"""A proposer's block executed ahead of its block timer (`node.consensus.speculation`).

The production block port over a real chain and pool: transactions the pool holds before the
timer are executed early, those arriving later when the timer fires, and the proposal is the
block a proposer building at the timer would have made; another validator re-executes it to
the same header. A timestamp other than the one speculated on falls back to building afresh.
"""

from __future__ import annotations

import logging
import time

import pytest

from node.chain.chain import Chain
from node.chain.vm import decode_transaction
from node.consensus.build_budget import BuildBudget
from node.consensus.executed import ExecutedBlocks
from node.consensus.qbft.validators import proposer
from node.consensus.qbft_engine import BUILD_BUDGET_SHARE, ChainBlockPort
from node.consensus.speculation import Speculation
from node.consensus.voting import VoteProposals
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool
from tests.test_chain import transfers
from tests.test_qbft_consensus import make_genesis, new_chain, validator_keys

EARLY = 6
LATE = 4


def proposer_port(chain: Chain, pool: TxPool) -> ChainBlockPort:
    """The block port of the validator that proposes round 0 of the chain's next height."""
    keys = validator_keys(4)
    first = proposer(chain.validator_tally(chain.head_hash).validators, chain.head.coinbase, 0)
    key = next(k for k in keys if k.public_key.to_canonical_address() == first)
    return ChainBlockPort(
        chain,
        key,
        VoteProposals(),
        lambda: pool.select(chain.head.gas_limit, chain.child_base_fee(chain.head)),
        BuildBudget(1, 2, BUILD_BUDGET_SHARE),
        ExecutedBlocks(),
        pool.admitted,
    )


def new_pool(chain: Chain) -> TxPool:
    return TxPool(PoolConfig(), AdmissionRules(chain_id=chain.chain_id, block_gas_limit=10**9))


def test_a_block_executed_early_is_finished_at_the_timer_with_what_arrived_since(
    caplog: pytest.LogCaptureFixture,
) -> None:
    genesis = make_genesis(4)
    chain = new_chain(genesis)
    pool = new_pool(chain)
    txs = transfers(EARLY + LATE)
    for tx in txs[:EARLY]:
        pool.add(tx.encode(), chain.state_at(chain.head))
    port = proposer_port(chain, pool)
    timestamp = chain.head.timestamp + 1

    port.speculate(timestamp, until=time.monotonic() + 10)
    assert port.speculation is not None
    spent = port.speculation.spent
    port.speculate(timestamp, until=time.monotonic() + 10)  # nothing new: nothing re-run
    assert port.speculation.spent == spent
    assert port.speculation.block.applied == EARLY
    for tx in txs[EARLY:]:
        pool.add(tx.encode(), chain.state_at(chain.head))
    with caplog.at_level(logging.INFO, logger="node.consensus.qbft_engine"):
        block = port.create_block(chain.head, 0, timestamp)

    assert f"{EARLY} of them executed ahead of the timer" in caplog.text
    assert port.speculation is None
    assert [tx.hash for tx in block.transactions] == [tx.hash for tx in txs]
    other = new_chain(genesis)
    reexecuted = other.reexecute(block.header, [decode_transaction(tx.encode()) for tx in txs])
    assert reexecuted.header == block.header


def test_another_timestamp_than_speculated_on_builds_afresh() -> None:
    chain = new_chain(make_genesis(4))
    pool = new_pool(chain)
    for tx in transfers(EARLY):
        pool.add(tx.encode(), chain.state_at(chain.head))
    port = proposer_port(chain, pool)
    port.speculate(chain.head.timestamp + 1, until=time.monotonic() + 10)

    late = chain.head.timestamp + 2  # the timer fired more than a second late
    block = port.create_block(chain.head, 0, late)

    assert block.header.timestamp == late
    assert len(block.transactions) == EARLY
    assert port.speculation is None


def test_what_the_timer_cut_short_is_offered_again() -> None:
    """Transactions deferred because the timer was near are not settled: the next batch
    (or the timer's) executes them."""
    chain = new_chain(make_genesis(4))
    pool = new_pool(chain)
    for tx in transfers(EARLY):
        pool.add(tx.encode(), chain.state_at(chain.head))
    selection = pool.select(chain.head.gas_limit, 0)
    speculation = Speculation(
        chain.open_block(timestamp=chain.head.timestamp + 1, coinbase=b"\x01" * 20, extra_data=b"")
    )

    speculation.apply(selection, budget=10.0, until=time.monotonic() - 1)
    assert speculation.block.applied == 0
    speculation.apply(selection, budget=10.0, until=time.monotonic() + 10)
    assert speculation.block.applied == EARLY
    speculation.apply(selection, budget=10.0, until=time.monotonic() + 10)
    assert speculation.block.applied == EARLY
