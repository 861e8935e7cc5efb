"""The production block port inside the seeded QBFT simulation.

`tests/test_qbft_consensus.py` drives the state machine over a test `ChainPort`; here every
validator runs the node's own `ChainBlockPort` over a real `Chain` on its own LevelDB
directory, with a real `TxPool` behind it: blocks are built with the build budget, the f
designated validators check round-0 proposals against the proposer's state diff
(`import_with_diff`) instead of re-executing them, decided blocks are written from the kept
execution (`ChainBlockPort.commit`) and synced ones through `ExecutedBlocks`, as the engine and
block sync do. The network is the seeded simulation (no sockets, no clock); a diff travels
before the proposal on the same link, as `QbftEngine` sends it.

The Byzantine proposer sends a state diff that is self-consistent but wrong: it credits an
account nothing paid, and the block's state root is recomputed so that the diff reaches it.
The designated checker accepts such a diff (that is the point of checking a diff: it is exact
about the state, not about execution), so safety rests on the re-executing validators of
every quorum (`node.consensus.scheduling`): the block must never commit, and the height must
be decided in a later round.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import rlp
from eth.abc import BlockHeaderAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from eth_keys.datatypes import PrivateKey
from eth_typing import Address

from node.chain.chain import Chain, PendingBlock
from node.chain.diff_import import encode_diff_message
from node.chain.importer import import_block
from node.chain.trie_updates import apply_updates
from node.consensus.build_budget import BuildBudget
from node.consensus.executed import ExecutedBlocks
from node.consensus.qbft.messages import Prepare, QbftBlock
from node.consensus.qbft.state_machine import Action, Broadcast, NewChainHead, QbftStateMachine
from node.consensus.qbft.validators import proposer
from node.consensus.qbft_engine import BUILD_BUDGET_SHARE, ChainBlockPort
from node.consensus.scheduling import deferring_validators
from node.consensus.voting import VoteProposals
from node.qbftheader.extra_data import QbftExtraData
from node.qbftheader.hashing import commit_seal_hash, onchain_hash
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore, MemoryStore
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.transaction import PooledTransaction
from tests.test_chain import transfers
from tests.test_qbft_consensus import ChainPort, Network, SimNode, validator_keys

THIEF = Address(b"\x7e" * 20)
"""The account the Byzantine proposer's diff credits."""
STOLEN = 10**21
TRANSACTIONS = 24
ENGINE_LOG = "node.consensus.qbft_engine"


class WrongDiffPort(ChainBlockPort):
    """A proposer whose blocks credit `THIEF` out of nothing, with a state diff to match.

    The block is the honest one with the thief's account added to its diff and the header's
    state root recomputed from that diff: transactions, receipts, gas and bloom all agree
    with the header, and the diff reaches its state root exactly. Only executing the block
    shows that the credit came from nowhere.
    """

    def __init__(self, *args: Any, forged: list[BlockHeaderAPI]) -> None:
        super().__init__(*args)
        self.forged = forged
        """Every forged header, in the order proposed."""

    def create_block(self, parent: BlockHeaderAPI, round_number: int, timestamp: int) -> QbftBlock:
        honest = super().create_block(parent, round_number, timestamp)
        pending = self.executed.pop(onchain_hash(honest.header))
        assert pending is not None and pending.executed.state_diff is not None
        diff = copy.deepcopy(pending.executed.state_diff)
        diff.accounts[THIEF] = rlp.encode(Account(0, STOLEN, BLANK_ROOT_HASH, EMPTY_SHA3))
        root, _ = apply_updates(
            self.chain.store.new_batch().__getitem__,
            self.chain.head.state_root,
            {keccak(address): value for address, value in diff.accounts.items()},
        )
        header = honest.header.copy(state_root=root)
        executed = dataclasses.replace(pending.executed, header=header, state_diff=diff)
        block_hash = onchain_hash(header)
        self.executed.keep(block_hash, PendingBlock(pending.parent_hash, executed, pending.batch))
        if self.outgoing_diff is not None:
            recipients = self.outgoing_diff[2]
            self.outgoing_diff = (block_hash, encode_diff_message(block_hash, executed), recipients)
        self.forged.append(header)
        return QbftBlock(header, honest.transactions)


class PortNetwork(Network):
    """The simulation with `ChainBlockPort`s over LevelDB chains and real pools."""

    def __init__(self, n: int, datadir: Path, byzantine: int | None = None, **kwargs: Any) -> None:
        self.datadir = datadir
        self.byzantine = byzantine
        self.stores: list[LevelDBStore] = []
        self.pools: dict[int, TxPool] = {}
        self.forged: list[BlockHeaderAPI] = []
        super().__init__(n, **kwargs)

    def _node(self, index: int, key: PrivateKey, pool: list | None) -> SimNode:
        store = LevelDBStore(self.datadir / f"node{index}")
        self.stores.append(store)
        chain = Chain(ChainStore(store), self.genesis)
        txpool = self.pools[index] = TxPool(
            PoolConfig(), AdmissionRules(chain_id=chain.chain_id, block_gas_limit=10**9)
        )
        for tx in transfers(TRANSACTIONS):
            txpool.add(tx.encode(), chain.state_at(chain.head))
        budget = BuildBudget(
            self.config.block_period_seconds, self.config.round_timeout(0), BUILD_BUDGET_SHARE
        )
        args = (
            chain,
            key,
            VoteProposals(),
            lambda: self._select(chain, txpool),
            budget,
            ExecutedBlocks(),
            txpool.admitted,
        )
        port = (
            WrongDiffPort(*args, forged=self.forged)
            if index == self.byzantine
            else ChainBlockPort(*args)
        )
        # SimNode types its port as the test's ChainPort; both serve the state machine's BlockPort
        node = SimNode(
            index, key, chain, cast(ChainPort, port), QbftStateMachine(key, port, self.config)
        )
        node.honest = index != self.byzantine
        return node

    @staticmethod
    def _select(chain: Chain, pool: TxPool) -> list[PooledTransaction]:
        return pool.select(chain.head.gas_limit, chain.child_base_fee(chain.head))

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def perform(self, node: SimNode, action: Action) -> None:
        """As `QbftEngine._perform`: a proposal's state diff goes out first, on each link."""
        if isinstance(action, Broadcast):
            outgoing = cast(ChainBlockPort, node.port).take_outgoing_diff(action.message)
            if outgoing is not None:
                payload, recipients = outgoing
                for recipient in recipients:
                    target = self.node_of(recipient)
                    if (node.index, target.index) not in self.blocked and target.alive:
                        cast(ChainBlockPort, target.port).receive_diff(payload)
        super().perform(node, action)

    def import_sealed(self, node: SimNode, block: QbftBlock, *, via_sync: bool) -> None:
        """A decided block written as the engine writes it (from the kept execution), a synced
        one as block sync does (seals verified, the kept execution reused if any)."""
        port = cast(ChainBlockPort, node.port)
        header = block.header
        if via_sync:
            import_block(node.chain, header, block.transactions, executed=port.executed.get)
            senders = {tx.sender for tx in block.transactions}
        else:
            _, senders = port.commit(header, block)
        self.pools[node.index].on_new_block(
            [tx.hash for tx in block.transactions],
            node.chain.state_at(node.chain.head),
            senders=senders,
        )
        node.sealed[header.block_number] = block
        if node.honest:
            decided = self.decided.setdefault(header.block_number, node.chain.head_hash)
            assert decided == node.chain.head_hash, f"fork at height {header.block_number}"
        self.feed(node, NewChainHead(node.chain.head, self.now))


@pytest.fixture
def network_factory(tmp_path: Path) -> Iterator[Callable[..., PortNetwork]]:
    made: list[PortNetwork] = []

    def make(n: int, **kwargs: Any) -> PortNetwork:
        net = PortNetwork(n, tmp_path / f"net{len(made)}", **kwargs)
        made.append(net)
        return net

    yield make
    for net in made:
        net.close()


def replay_on_a_fresh_chain(net: PortNetwork, node: SimNode) -> None:
    """Every block `node` committed re-executes, seals verified, on a chain that saw none of
    the simulation: nothing the node holds came from a diff that execution would refute."""
    verifier = Chain(ChainStore(MemoryStore()), net.genesis)
    for number in range(1, node.head + 1):
        header = node.chain.header_by_number(number)
        assert header is not None
        transactions = node.sealed[number].transactions
        import_block(verifier, header, transactions)
    assert verifier.head_hash == node.chain.head_hash


def diff_validations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == ENGINE_LOG and "against the state diff" in record.getMessage()
    ]


def test_honest_validators_check_proposals_against_diffs_and_commit_from_them(
    network_factory: Callable[..., PortNetwork], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    # `Network.start` returns the network it started, typed as the base class
    net = cast(PortNetwork, network_factory(4, seed=7, delay=(0.02, 0.08)).start())
    assert net.run_until_height(4, limit=30) == [4] * 4
    net.assert_consistent()
    # The diff shortcut was taken (one designated checker per height of four validators)...
    assert len(diff_validations(caplog)) >= 3
    # ...and cost no round: every height was decided in round 0, with every transaction.
    for number in range(1, 5):
        assert QbftExtraData.decode(net.nodes[0].sealed[number].header.extra_data).round == 0
    assert sum(len(net.nodes[0].sealed[n].transactions) for n in range(1, 5)) == TRANSACTIONS
    for node in net.nodes:
        replay_on_a_fresh_chain(net, node)
        assert len(net.pools[node.index]) == 0


@pytest.mark.parametrize("seed", [3, 11])
def test_a_consistent_but_wrong_state_diff_never_commits(
    network_factory: Callable[..., PortNetwork], caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    net = network_factory(4, seed=seed, delay=(0.02, 0.08), byzantine=round0_proposer_of_one(4))
    net.start()
    honest = [node for node in net.nodes if node.honest]
    assert net.run_until_height(5, limit=60, nodes=honest) == [5] * 3
    net.assert_consistent()

    assert net.forged, "the Byzantine validator never proposed"
    forged = {onchain_hash(header) for header in net.forged}
    for node in honest:
        for number in range(1, node.head + 1):
            header = node.chain.header_by_number(number)
            assert header is not None and onchain_hash(header) not in forged
        assert node.chain.state_at(node.chain.head).get_balance(THIEF) == 0
        replay_on_a_fresh_chain(net, node)

    # The designated checkers accepted the forged diff and prepared the forged block (the
    # forgery was consistent); only the re-executing validators kept it out.
    for header in net.forged:
        parent = honest[0].chain.header_by_number(header.block_number - 1)
        assert parent is not None
        in_round0 = QbftExtraData.decode(header.extra_data).round == 0
        checkers = deferring_validators(net.genesis.validators, parent.coinbase)
        prepared = {node.address for node in honest if any(prepares(m, header) for m in node.sent)}
        assert prepared == (set(checkers) if in_round0 else set())
    assert diff_validations(caplog)
    assert any(
        record.name == ENGINE_LOG and "rejected" in record.getMessage() for record in caplog.records
    ), "no re-executing validator rejected the forged block"
    # The chain moved on: the forged height was decided in a later round by another proposer.
    first = honest[0].sealed[1].header
    assert QbftExtraData.decode(first.extra_data).round >= 1
    assert net.byzantine is not None
    assert first.coinbase != net.nodes[net.byzantine].address


def round0_proposer_of_one(n: int) -> int:
    """The simulation index of the validator proposing height 1 in round 0."""
    validators = [key.public_key.to_canonical_address() for key in validator_keys(n)]
    genesis_coinbase = b"\x00" * 20
    return validators.index(proposer(validators, genesis_coinbase, 0))


def prepares(message: object, header: BlockHeaderAPI) -> bool:
    """Whether `message` is a PREPARE for the block `header` (its round's digest)."""
    return (
        isinstance(message, Prepare)
        and message.height == header.block_number
        and commit_seal_hash(header, message.round) == message.digest
    )
