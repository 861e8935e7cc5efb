"""The QBFT engine relays a consensus message only once its state machine accepted it.

One validator's real `QbftEngine` (real chain on LevelDB, pool, block sync, p2p host) sits
between two other validators' p2p hosts that are not linked to each other: A - B - C. What A
sends reaches C only through B's engine performing the machine's `Regossip`; messages the
machine drops (a non-validator's, one for a past height) go no further than B.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from eth_keys.datatypes import PrivateKey

from node.chain.chain import Chain
from node.chain.notifications import ChainEvents
from node.consensus.executed import ExecutedBlocks
from node.consensus.qbft.messages import Prepare
from node.consensus.qbft_engine import QbftEngine
from node.consensus.sync import BlockSync
from node.consensus.voting import VoteProposals
from node.metrics import NodeMetrics
from node.p2p.allowlist import AllowList
from node.p2p.host import P2PHost
from node.p2p.messages import MessageKind
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool
from tests.test_p2p import FAST, LOCAL, link, recorder, run, started, wait_until
from tests.test_qbft_consensus import OUTSIDER, make_genesis, validator_keys


def address(key: PrivateKey) -> bytes:
    return key.public_key.to_canonical_address()


def wire(message: Prepare) -> bytes:
    return bytes([message.code]) + message.data


def test_only_messages_the_machine_accepted_are_relayed(tmp_path: Path) -> None:
    genesis = make_genesis(4)
    key_a, key_b, key_c, _ = validator_keys(4)
    store = LevelDBStore(tmp_path / "chaindata")
    chain = Chain(ChainStore(store), genesis)
    allowed = AllowList([*genesis.validators, address(OUTSIDER)])

    def host(key: PrivateKey) -> P2PHost:
        return P2PHost(key, LOCAL, 0, genesis.chain_id, chain.head_hash, allowed, FAST)

    a, b, c = host(key_a), host(key_b), host(key_c)
    events, lock = ChainEvents(), asyncio.Lock()
    pool = TxPool(
        PoolConfig(), AdmissionRules(chain_id=genesis.chain_id, block_gas_limit=genesis.gas_limit)
    )
    engine = QbftEngine(
        chain,
        pool,
        events,
        key_b,
        b,
        BlockSync(chain, b, events, lock, lambda block, blocks: None),
        lock,
        VoteProposals(),
        NodeMetrics(height=lambda: chain.head.block_number, pool=pool.stats),
        ExecutedBlocks(),
    )
    digest = b"\x5a" * 32
    accepted = Prepare.create(key_a, 1, 0, digest)
    outsider = Prepare.create(OUTSIDER, 1, 0, digest)
    past = Prepare.create(key_a, 0, 0, digest)

    async def body() -> None:
        async with started(a, b, c):
            at_c = recorder(c, MessageKind.CONSENSUS)
            running = asyncio.create_task(engine.run())
            try:
                link(a, b)
                link(c, b)
                await wait_until(
                    lambda: (a.peer_count, b.peer_count, c.peer_count) == (1, 2, 1),
                    what="A - B - C, each end having its peers",
                )
                for message in (outsider, past, accepted):
                    a.gossip(MessageKind.CONSENSUS, wire(message))
                await wait_until(
                    lambda: (b.address, wire(accepted)) in at_c, what="the relayed prepare at C"
                )
                await asyncio.sleep(0.2)
                relayed = [payload for _, payload in at_c]
                assert wire(outsider) not in relayed
                assert wire(past) not in relayed
                assert relayed.count(wire(accepted)) == 1
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)

    try:
        run(body())
    finally:
        store.close()
