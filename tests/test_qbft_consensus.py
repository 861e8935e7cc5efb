"""The pure QBFT state machine on real chains, driven by a seeded simulated network.

Every simulated validator has its own `Chain` over a `MemoryStore` with one shared genesis;
blocks are built and re-executed by py-evm, messages cross the wire codecs, and committed
blocks are imported (re-execute + commit, or seal-checked sync) before `NewChainHead` is fed
back. Time is simulated: a priority queue of (time, event), every random choice drawn from one
seeded `random.Random`, so any failure reproduces from its seed.

Safety is asserted on every import in every test: no two honest nodes commit different blocks
at one height (shared/QBFT.md §6 items 5-10).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from eth_hash.auto import keccak
from eth_keys import keys
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.chain.chain import Chain
from node.chain.executor import BlockRejected
from node.chain.genesis import Genesis, dev_genesis
from node.chain.importer import import_block
from node.consensus.extra_data import VANITY_LENGTH, QbftExtraData
from node.consensus.hashing import commit_seal_hash, onchain_hash, recover_seal_signer
from node.consensus.qbft.messages import (
    Commit,
    Prepare,
    PreparedRoundMetadata,
    Proposal,
    QbftBlock,
    QbftMessage,
    RoundChange,
    decode_message,
)
from node.consensus.qbft.state_machine import (
    Action,
    BlockTimerExpired,
    Broadcast,
    CommitBlock,
    Log,
    MessageReceived,
    NewChainHead,
    QbftConfig,
    QbftStateMachine,
    Regossip,
    RequestSync,
    RoundTimerExpired,
    StartTimer,
    with_round,
)
from node.consensus.qbft.validators import proposer, quorum
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.test_chain import transfers

ALL_KEYS = [keys.PrivateKey(keccak(b"tally-qbft-validator-%d" % i)) for i in range(10)]
OUTSIDER = keys.PrivateKey(keccak(b"tally-qbft-outsider"))


def validator_keys(n: int) -> list[keys.PrivateKey]:
    """The n validators' keys, sorted by address (the order proposer rotation uses)."""
    return sorted(ALL_KEYS[:n], key=lambda k: k.public_key.to_canonical_address())


def make_genesis(n: int) -> Genesis:
    base = dev_genesis(ALL_KEYS[0].public_key.to_canonical_address())
    return Genesis(
        chain_id=1337,
        validators=tuple(k.public_key.to_canonical_address() for k in validator_keys(n)),
        alloc=base.alloc,
        block_period_seconds=1,
        request_timeout_seconds=2,
    )


def new_chain(genesis: Genesis) -> Chain:
    return Chain(ChainStore(MemoryStore()), genesis)


class ChainPort:
    """The `BlockPort` an engine would give the state machine, over a real `Chain`."""

    def __init__(self, chain: Chain, address: bytes, pool: list | None = None) -> None:
        self.chain = chain
        self.address = address
        self.pool = pool if pool is not None else []
        self.validations = 0

    def validators_after(self, header):
        return self.chain.validator_tally(onchain_hash(header)).validators

    def create_block(self, parent, round_number: int, timestamp: int) -> QbftBlock:
        assert onchain_hash(parent) == self.chain.head_hash
        return build_block(self.chain, self.address, round_number, timestamp, self.pool)

    def validate_block(self, block: QbftBlock) -> bool:
        self.validations += 1
        try:
            self.chain.reexecute(block.header, block.transactions)
        except BlockRejected:
            return False
        return True


def build_block(
    chain: Chain, coinbase: bytes, round_number: int, timestamp: int, txs: list | None = None
) -> QbftBlock:
    extra = QbftExtraData(
        vanity=chain.genesis.vanity.rjust(VANITY_LENGTH, b"\x00"),
        validators=chain.validator_tally(chain.head_hash).validators,
        vote=None,
        round=round_number,
        seals=(),
    )
    pending = chain.build(
        list(txs or []), timestamp=timestamp, coinbase=coinbase, extra_data=extra.encode()
    )
    return QbftBlock(pending.header, tuple(item.tx for item in pending.executed.transactions))


# ---------------------------------------------------------------------------------------------
# Simulated network


@dataclass
class SimNode:
    index: int
    key: keys.PrivateKey
    chain: Chain
    port: ChainPort
    machine: QbftStateMachine
    alive: bool = True
    honest: bool = True
    sealed: dict[int, QbftBlock] = field(default_factory=dict)
    sent: list[QbftMessage] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    @property
    def address(self) -> bytes:
        return self.key.public_key.to_canonical_address()

    @property
    def head(self) -> int:
        return self.chain.head.block_number


class SafetyViolation(AssertionError):
    pass


class Network:
    """Validators exchanging messages through a seeded, lossy, reordering event queue."""

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        delay: tuple[float, float] = (0.05, 0.05),
        drop: float = 0.0,
        duplicate: float = 0.0,
        gossip: bool = False,
        config: QbftConfig | None = None,
        pool: list | None = None,
    ) -> None:
        self.genesis = make_genesis(n)
        self.config = config or QbftConfig.from_genesis(self.genesis)
        self.rng = random.Random(seed)
        self.delay, self.drop, self.duplicate, self.gossip = delay, drop, duplicate, gossip
        self.now = 0.0
        self.queue: list[tuple[float, int, int, str, object]] = []
        self.seq = itertools.count()
        self.timers: dict[tuple[int, str], int] = {}
        self.blocked: set[tuple[int, int]] = set()
        self.filter: Callable[[int, int, QbftMessage], bool] = lambda src, dst, msg: True
        self.intercept: Callable[[SimNode, Broadcast], bool] = lambda node, action: False
        self.decided: dict[int, bytes] = {}
        self.nodes = [self._node(i, key, pool) for i, key in enumerate(validator_keys(n))]

    def _node(self, index: int, key: keys.PrivateKey, pool: list | None) -> SimNode:
        chain = new_chain(self.genesis)
        port = ChainPort(chain, key.public_key.to_canonical_address(), pool)
        return SimNode(index, key, chain, port, QbftStateMachine(key, port, self.config))

    def node_of(self, address: bytes) -> SimNode:
        return next(node for node in self.nodes if node.address == address)

    # -- scheduling ----------------------------------------------------------------------------

    def push(self, at: float, index: int, kind: str, payload: object) -> None:
        heapq.heappush(self.queue, (at, next(self.seq), index, kind, payload))

    def start(self) -> Network:
        for node in self.nodes:
            self.feed(node, NewChainHead(node.chain.head, self.now))
        return self

    def restart(self, node: SimNode) -> None:
        """A process restart: fresh state machine rebuilt from the chain head (besu#8307)."""
        node.alive = True
        node.machine = QbftStateMachine(node.key, node.port, self.config)
        self.feed(node, NewChainHead(node.chain.head, self.now))

    def partition(self, group: set[int]) -> None:
        """Cut every link between `group` and the rest, and inside `group`."""
        for a in range(len(self.nodes)):
            for b in range(len(self.nodes)):
                if a != b and (a in group or b in group):
                    self.blocked.add((a, b))

    def heal(self) -> None:
        self.blocked.clear()

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> None:
        while self.queue and self.queue[0][0] <= until:
            if stop is not None and stop():
                return
            at, _, index, kind, payload = heapq.heappop(self.queue)
            self.now = at
            node = self.nodes[index]
            if not node.alive:
                continue
            if kind == "msg":
                self.feed(node, MessageReceived(payload, self.now))  # type: ignore[arg-type]
            elif kind == "timer":
                timer_kind, height, round_number, generation = payload  # type: ignore[misc]
                if self.timers.get((index, timer_kind)) != generation:
                    continue
                if timer_kind == "block":
                    self.feed(node, BlockTimerExpired(height, self.now))
                else:
                    self.feed(node, RoundTimerExpired(height, round_number, self.now))
            elif kind == "sync":
                self.sync(node)
        self.now = max(self.now, until)

    def run_until_height(self, height: int, limit: float, nodes: list[SimNode] | None = None):
        targets = nodes if nodes is not None else [n for n in self.nodes if n.alive and n.honest]
        self.run(self.now + limit, stop=lambda: all(n.head >= height for n in targets))
        return [n.head for n in targets]

    # -- actions -------------------------------------------------------------------------------

    def feed(self, node: SimNode, event) -> None:
        for action in node.machine.handle(event):
            self.perform(node, action)

    def perform(self, node: SimNode, action: Action) -> None:
        if isinstance(action, Broadcast):
            node.sent.append(action.message)
            if node.honest or not self.intercept(node, action):
                wire = decode_message(action.code, action.data)
                self.multicast(node.index, wire, exclude=())
        elif isinstance(action, Regossip):
            if self.gossip:
                author = self.node_of(action.message.author).index
                self.multicast(node.index, action.message, exclude=(author,))
        elif isinstance(action, StartTimer):
            key = (node.index, action.kind)
            generation = self.timers.get(key, 0) + 1
            self.timers[key] = generation
            payload = (action.kind, action.height, action.round, generation)
            self.push(self.now + action.delay_seconds, node.index, "timer", payload)
        elif isinstance(action, CommitBlock):
            self.import_sealed(node, action.block, via_sync=False)
        elif isinstance(action, RequestSync):
            self.push(self.now + 0.5, node.index, "sync", action.height)
        elif isinstance(action, Log):
            node.logs.append(action.text)

    def multicast(self, src: int, message: QbftMessage, exclude: tuple[int, ...]) -> None:
        for dst in range(len(self.nodes)):
            if dst != src and dst not in exclude:
                self.send(src, dst, message)

    def send(self, src: int, dst: int, message: QbftMessage) -> None:
        if (src, dst) in self.blocked or not self.filter(src, dst, message):
            return
        if self.drop and self.rng.random() < self.drop:
            return
        copies = 2 if self.duplicate and self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.push(self.now + self.rng.uniform(*self.delay), dst, "msg", message)

    def import_sealed(self, node: SimNode, block: QbftBlock, *, via_sync: bool) -> None:
        header = block.header
        if via_sync:
            import_block(node.chain, header, block.transactions)
        else:
            pending = node.chain.reexecute(header, block.transactions)
            node.chain.commit(pending, header)
        node.sealed[header.block_number] = block
        if node.honest:
            decided = self.decided.setdefault(header.block_number, node.chain.head_hash)
            if decided != node.chain.head_hash:
                raise SafetyViolation(f"two blocks committed at height {header.block_number}")
        self.feed(node, NewChainHead(node.chain.head, self.now))

    def sync(self, node: SimNode) -> None:
        """Block sync from the most advanced reachable peer, seals verified on import."""
        peers = [
            p
            for p in self.nodes
            if p is not node and p.alive and (p.index, node.index) not in self.blocked
        ]
        if not peers:
            return
        best = max(peers, key=lambda p: p.head)
        for number in range(node.head + 1, best.head + 1):
            self.import_sealed(node, best.sealed[number], via_sync=True)

    def assert_consistent(self) -> None:
        honest = [n for n in self.nodes if n.honest]
        for number in range(1, max(n.head for n in honest) + 1):
            hashes = {n.chain.header_by_number(number) for n in honest if n.head >= number}
            assert len({onchain_hash(h) for h in hashes}) == 1, f"fork at height {number}"


def check_sealed(block: QbftBlock, validators: tuple[bytes, ...]) -> list[bytes]:
    extra = QbftExtraData.decode(block.header.extra_data)
    signers = [recover_seal_signer(block.header, seal) for seal in extra.seals]
    assert len(set(signers)) == len(signers), "duplicate sealers"
    assert set(signers) <= set(validators)
    return signers


# ---------------------------------------------------------------------------------------------
# Happy path (§6 item 5)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_happy_path_commits_with_exactly_a_quorum_of_seals(n: int) -> None:
    pool = transfers(8)
    net = Network(n, pool=pool).start()
    assert net.run_until_height(3, limit=30) == [3] * n
    net.assert_consistent()
    validators = net.genesis.validators
    previous = b"\x00" * 20
    for number in range(1, 4):
        block = net.nodes[0].sealed[number]
        signers = check_sealed(block, validators)
        assert len(signers) == quorum(n)
        expected = proposer(validators, previous, 0)
        assert block.header.coinbase == expected
        assert QbftExtraData.decode(block.header.extra_data).round == 0
        previous = expected
        # The proposer also prepared its own block.
        prepares = [
            m for m in net.node_of(expected).sent if isinstance(m, Prepare) and m.height == number
        ]
        assert len(prepares) == 1
        for node in net.nodes:
            assert node.chain.header_by_number(number) is not None
    assert len(net.nodes[0].sealed[1].transactions) == 8
    assert all(node.chain.head_hash == net.nodes[0].chain.head_hash for node in net.nodes)


def test_the_round_zero_timer_starts_only_when_the_block_timer_fires() -> None:
    genesis = make_genesis(4)
    key = validator_keys(4)[2]
    chain = new_chain(genesis)
    machine = QbftStateMachine(
        key,
        ChainPort(chain, key.public_key.to_canonical_address()),
        QbftConfig.from_genesis(genesis),
    )
    actions = machine.handle(NewChainHead(chain.head, 0.25))
    assert actions == [StartTimer("block", 1, 0, 0.75)]
    assert machine.round is None
    actions = machine.handle(BlockTimerExpired(1, 1.0))
    assert StartTimer("round", 1, 0, 2.0) in actions
    assert machine.round == 0
    # A stale block timer for a height already imported is discarded (besu#10052).
    assert machine.handle(BlockTimerExpired(0, 1.0)) == []


def test_a_non_validator_runs_a_no_op_manager() -> None:
    genesis = make_genesis(4)
    chain = new_chain(genesis)
    machine = QbftStateMachine(
        OUTSIDER,
        ChainPort(chain, OUTSIDER.public_key.to_canonical_address()),
        QbftConfig.from_genesis(genesis),
    )
    assert machine.handle(NewChainHead(chain.head, 0.0)) == []
    assert machine.handle(BlockTimerExpired(1, 1.0)) == []
