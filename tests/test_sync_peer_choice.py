"""Which peer a lagging node asks for blocks (found by benchmarks/chaos.py's kill -9 loop).

Two of four validators were left one block behind; `want` (validators are past height h)
marked every connected peer as having h, including the other laggard, and the sync loop asked
the highest address among equals: each laggard asked the other, got no blocks, and asked
again, for minutes, while the two that had the block ran rounds without a quorum. A peer's
own STATUS now outranks a guess, ties are broken at random, and a peer that answers with no
blocks is taken at its word.
"""

from __future__ import annotations

import asyncio

import rlp
from eth_keys import keys

from node.chain.notifications import ChainEvents
from node.consensus.sync import Blocks, BlockSync, Status
from node.p2p.host import P2PHost
from tests.test_chain import new_chain

HAS_IT, LAGGARD = b"\x01" * 20, b"\xff" * 20  # the laggard has the higher address


def _sync() -> BlockSync:
    chain = new_chain()
    host = P2PHost(
        keys.PrivateKey(b"\x07" * 32), "127.0.0.1", 0, chain.chain_id, chain.head_hash, bool
    )
    return BlockSync(chain, host, ChainEvents(), asyncio.Lock(), lambda block, blocks: None)


def test_a_peer_that_announced_the_block_is_asked_before_a_guessed_one() -> None:
    sync = _sync()
    ours = sync.chain.head.block_number
    sync._on_status(HAS_IT, rlp.encode(Status(ours + 1, b"\x22" * 32)))
    sync._heads[LAGGARD] = sync._heads[HAS_IT].__class__(ours, b"\x33" * 32)
    sync.want(ours + 1)  # as RequestSync does: every connected peer is guessed ahead
    sync.head_hint(LAGGARD, ours + 2)
    assert {sync._pick(ours)[1] for _ in range(20)} == {HAS_IT}


def test_a_peer_answering_no_blocks_is_not_asked_again_for_them() -> None:
    sync = _sync()
    ours = sync.chain.head.block_number
    sync.head_hint(LAGGARD, ours + 2)
    sync.head_hint(HAS_IT, ours + 2)
    sync._in_flight = (LAGGARD, 0.0)
    asyncio.run(sync._on_blocks(LAGGARD, rlp.encode(Blocks([]))))
    assert sync._heads[LAGGARD].number == ours
    assert {sync._pick(ours)[1] for _ in range(20)} == {HAS_IT}
