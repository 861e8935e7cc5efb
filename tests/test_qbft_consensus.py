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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import pytest
from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.datatypes import PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.chain.chain import Chain
from node.chain.executor import BlockRejected
from node.chain.genesis import Genesis, dev_genesis
from node.chain.importer import import_block
from node.consensus.block_codec import decode_message
from node.consensus.qbft.messages import (
    Commit,
    Prepare,
    PreparedRoundMetadata,
    PreparePayload,
    Proposal,
    QbftBlock,
    QbftMessage,
    RoundChange,
    RoundChangePayload,
    Signed,
)
from node.consensus.qbft.state_machine import (
    Action,
    BlockTimerExpired,
    Broadcast,
    CommitBlock,
    Event,
    Log,
    MessageReceived,
    NewChainHead,
    PeerConnected,
    PeerDisconnected,
    QbftConfig,
    QbftStateMachine,
    Regossip,
    RequestSync,
    RoundTimerExpired,
    SendTo,
    StartTimer,
    with_round,
)
from node.consensus.qbft.validators import proposer
from node.qbftheader.extra_data import VANITY_LENGTH, QbftExtraData
from node.qbftheader.hashing import commit_seal_hash, onchain_hash, recover_seal_signer
from node.qbftheader.quorum import quorum
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.test_chain import transfers

ALL_KEYS = [keys.PrivateKey(keccak(b"tally-qbft-validator-%d" % i)) for i in range(10)]
OUTSIDER = keys.PrivateKey(keccak(b"tally-qbft-outsider"))


def validator_keys(n: int) -> list[PrivateKey]:
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

    def validators_after(self, header: BlockHeaderAPI) -> Sequence[bytes]:
        return self.chain.validator_tally(onchain_hash(header)).validators

    def create_block(self, parent: BlockHeaderAPI, round_number: int, timestamp: int) -> QbftBlock:
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
    key: PrivateKey
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

    def _node(self, index: int, key: PrivateKey, pool: list | None) -> SimNode:
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
                timer = cast(tuple[str, int, int, int], payload)  # as perform() pushes it
                timer_kind, height, round_number, generation = timer
                if self.timers.get((index, timer_kind)) != generation:
                    continue
                if timer_kind == "block":
                    self.feed(node, BlockTimerExpired(height, self.now))
                else:
                    self.feed(node, RoundTimerExpired(height, round_number, self.now))
            elif kind == "sync":
                self.sync(node)
            elif kind == "connect":
                self.feed(node, PeerConnected(payload, self.now))  # type: ignore[arg-type]
            elif kind == "disconnect":
                self.feed(node, PeerDisconnected(payload, self.now))  # type: ignore[arg-type]
        self.now = max(self.now, until)

    def run_until_height(
        self, height: int, limit: float, nodes: list[SimNode] | None = None
    ) -> list[int]:
        targets = nodes if nodes is not None else [n for n in self.nodes if n.alive and n.honest]
        self.run(self.now + limit, stop=lambda: all(n.head >= height for n in targets))
        return [n.head for n in targets]

    # -- actions -------------------------------------------------------------------------------

    def feed(self, node: SimNode, event: Event) -> None:
        for action in node.machine.handle(event):
            self.perform(node, action)

    def perform(self, node: SimNode, action: Action) -> None:
        if isinstance(action, Broadcast):
            node.sent.append(action.message)
            if node.honest or not self.intercept(node, action):
                wire = decode_message(action.code, action.data)
                self.multicast(node.index, wire, exclude=())
        elif isinstance(action, SendTo):
            node.sent.append(action.message)
            wire = decode_message(action.code, action.data)
            self.send(node.index, self.node_of(action.peer).index, wire)
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
        while node.head < best.head:  # replayed messages may commit blocks meanwhile
            self.import_sealed(node, best.sealed[node.head + 1], via_sync=True)

    def assert_consistent(self) -> None:
        honest = [n for n in self.nodes if n.honest]
        for number in range(1, max(n.head for n in honest) + 1):
            hashes = {header_at(n.chain, number) for n in honest if n.head >= number}
            assert len({onchain_hash(h) for h in hashes}) == 1, f"fork at height {number}"


def header_at(chain: Chain, number: int) -> BlockHeaderAPI:
    """The header at `number`, which the caller knows is at or below the chain's head."""
    header = chain.header_by_number(number)
    assert header is not None
    return header


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


# ---------------------------------------------------------------------------------------------
# One validator's machine fed hand-crafted messages (§6 items 6-8 and 10)


def digest(block: QbftBlock) -> bytes:
    return commit_seal_hash(block.header, QbftExtraData.decode(block.header.extra_data).round)


class Lab:
    """An observing validator at height 1 (round 0 started) and every validator's key."""

    def __init__(self, n: int = 4, config: QbftConfig | None = None, observer: int = -1) -> None:
        self.genesis = make_genesis(n)
        self.keys = validator_keys(n)
        self.validators = self.genesis.validators
        self.q = quorum(n)
        self.builder = new_chain(self.genesis)
        self.key = self.keys[observer]
        self.chain = new_chain(self.genesis)
        self.port = ChainPort(self.chain, self.key.public_key.to_canonical_address())
        self.machine = QbftStateMachine(
            self.key, self.port, config or QbftConfig.from_genesis(self.genesis)
        )
        self.machine.handle(NewChainHead(self.chain.head, 0.0))
        self.machine.handle(BlockTimerExpired(1, 1.0))
        assert proposer(self.validators, b"\x00" * 20, 0) != self.address

    @property
    def address(self) -> bytes:
        return self.key.public_key.to_canonical_address()

    def proposer_key(self, round_number: int) -> PrivateKey:
        address = proposer(self.validators, b"\x00" * 20, round_number)
        return next(k for k in self.keys if k.public_key.to_canonical_address() == address)

    def others(self, count: int) -> list[PrivateKey]:
        return [k for k in self.keys if k != self.key][:count]

    def block(
        self, coinbase: PrivateKey, round_number: int, timestamp: int = 1, txs: list | None = None
    ) -> QbftBlock:
        address = coinbase.public_key.to_canonical_address()
        return build_block(self.builder, address, round_number, timestamp, txs)

    def prepares(
        self, block: QbftBlock, round_number: int, signers: Iterable[PrivateKey]
    ) -> list[Signed[PreparePayload]]:
        return [Prepare.create(k, 1, round_number, digest(block)).signed for k in signers]

    def round_changes(
        self,
        target: int,
        signers: Iterable[PrivateKey],
        prepared: tuple[int, bytes] | None = None,
    ) -> list[Signed[RoundChangePayload]]:
        meta = None if prepared is None else PreparedRoundMetadata(prepared[0], prepared[1])
        return [RoundChange.create(k, 1, target, meta).signed for k in signers]

    def feed(self, message: QbftMessage, now: float = 2.0) -> list[Action]:
        return self.machine.handle(MessageReceived(message, now))


def prepared_in(actions: list[Action], round_number: int) -> bool:
    """Whether the machine accepted a proposal for `round_number` (it multicasts PREPARE)."""
    return any(
        isinstance(a, Broadcast)
        and isinstance(a.message, Prepare)
        and a.message.round == round_number
        for a in actions
    )


def rejection(actions: list[Action]) -> str:
    return " | ".join(a.text for a in actions if isinstance(a, Log) and "rejected" in a.text)


def test_round_zero_proposal_checks() -> None:
    lab = Lab()
    p0, p1 = lab.proposer_key(0), lab.proposer_key(1)
    cases = [
        (Proposal.create(p1, 1, 0, lab.block(p1, 0)), "not the proposer"),
        (Proposal.create(p0, 1, 0, lab.block(lab.keys[2], 0)), "coinbase"),
        (Proposal.create(p0, 1, 0, lab.block(p0, 1)), "extraData round"),
        (Proposal.create(p1, 1, 1, lab.block(p1, 1)), "0 round changes, 3 required"),
        (
            Proposal.create(p0, 1, 0, lab.block(p0, 0), lab.round_changes(1, lab.keys[:3])),
            "round-0 proposal carries a justification",
        ),
        (Proposal.create(p0, 1, 0, lab.block(p0, 0, timestamp=0)), "block period"),
        (Proposal.create(p0, 1, 0, lab.block(p0, 0, timestamp=9)), "in the future"),
    ]
    for proposal, reason in cases:
        actions = lab.feed(proposal)
        assert not prepared_in(actions, proposal.round)
        assert reason in rejection(actions)
    # A proposal whose block has another height's number.
    other = new_chain(lab.genesis)
    first = build_block(other, p0.public_key.to_canonical_address(), 0, 1)
    other.commit(other.reexecute(first.header, ()), first.header)
    second = build_block(other, p0.public_key.to_canonical_address(), 0, 2)
    assert "block number is not the height" in rejection(
        lab.feed(Proposal.create(p0, 1, 0, second))
    )
    # The first valid proposal of a round is accepted; an equivocating second one is not.
    first_block, second_block = lab.block(p0, 0), lab.block(p0, 0, txs=transfers(1))
    assert prepared_in(lab.feed(Proposal.create(p0, 1, 0, first_block)), 0)
    assert not prepared_in(lab.feed(Proposal.create(p0, 1, 0, second_block)), 0)


def test_future_height_proposals_are_buffered_not_handled() -> None:
    lab = Lab()
    p0 = lab.proposer_key(0)
    actions = lab.feed(Proposal.create(p0, 2, 0, lab.block(p0, 0)))
    assert actions == [RequestSync(2)]
    assert lab.feed(Prepare.create(p0, 12, 0, b"\x01" * 32)) == []  # more than 10 ahead


def test_round_one_justification_edge_cases() -> None:
    lab = Lab()
    p1 = lab.proposer_key(1)
    block = lab.block(p1, 1, timestamp=2)
    quorum_rcs = lab.round_changes(1, lab.keys[: lab.q])
    duplicated = [*lab.round_changes(1, lab.keys[:2]), lab.round_changes(1, lab.keys[:1])[0]]
    other_round = [*lab.round_changes(1, lab.keys[:2]), *lab.round_changes(2, lab.keys[2:3])]
    outsider = [*lab.round_changes(1, lab.keys[:2]), *lab.round_changes(1, [OUTSIDER])]
    stray_prepares = lab.prepares(block, 0, lab.keys[:3])
    cases = [
        (lab.round_changes(1, lab.keys[: lab.q - 1]), (), "2 round changes, 3 required"),
        (duplicated, (), "duplicate round-change authors"),
        (other_round, (), "another height or round"),
        (outsider, (), "non-validator"),
        (quorum_rcs, stray_prepares, "prepares without any prepared round change"),
    ]
    for rcs, prepares, reason in cases:
        actions = lab.feed(Proposal.create(p1, 1, 1, block, rcs, prepares), now=3.0)
        assert not prepared_in(actions, 1), reason
        assert reason in rejection(actions)
    assert lab.machine.round == 0
    # The valid one jumps the observer to round 1.
    actions = lab.feed(Proposal.create(p1, 1, 1, block, quorum_rcs), now=3.0)
    assert prepared_in(actions, 1)
    assert lab.machine.round == 1
    assert StartTimer("round", 1, 1, 4.0) in actions


def test_a_re_proposal_of_the_prepared_block_keeps_its_coinbase_and_is_accepted() -> None:
    lab = Lab()
    p0, p1 = lab.proposer_key(0), lab.proposer_key(1)
    locked = lab.block(p0, 0)
    locked_hash = digest(locked)
    prepares = lab.prepares(locked, 0, lab.keys[: lab.q])
    rcs = [
        *lab.round_changes(1, lab.keys[:1], prepared=(0, locked_hash)),
        *lab.round_changes(1, lab.keys[1 : lab.q]),
    ]
    reproposed = locked.with_header(with_round(locked.header, 1))
    assert reproposed.header.coinbase == p0.public_key.to_canonical_address() != p1
    assert digest(reproposed) != locked_hash
    assert onchain_hash(reproposed.header) == onchain_hash(locked.header)
    outsider_prepares = [*prepares[: lab.q - 1], *lab.prepares(locked, 0, [OUTSIDER])]
    fresh = lab.block(p1, 1, timestamp=2)
    wrong = lab.prepares(fresh, 0, lab.keys[: lab.q])
    cases = [
        (fresh, prepares, "does not match the highest prepared certificate"),
        (reproposed, prepares[: lab.q - 1], "2 justifying prepares, 3 required"),
        (reproposed, outsider_prepares, "non-validator"),
        (reproposed, wrong, "another height, round or block"),
        (reproposed, (), "0 justifying prepares"),
        (locked, prepares, "extraData round differs"),
    ]
    for block, justification, reason in cases:
        actions = lab.feed(Proposal.create(p1, 1, 1, block, rcs, justification), now=3.0)
        assert not prepared_in(actions, 1), reason
        assert reason in rejection(actions)
    duplicated = [*prepares, prepares[0]]  # duplicates by author are tolerated
    actions = lab.feed(Proposal.create(p1, 1, 1, reproposed, rcs, duplicated), now=3.0)
    assert prepared_in(actions, 1), rejection(actions)


def test_the_highest_prepared_certificate_wins() -> None:
    lab = Lab()
    p0, p1, p2 = lab.proposer_key(0), lab.proposer_key(1), lab.proposer_key(2)
    older, newer = lab.block(p0, 0), lab.block(p1, 1, timestamp=2)
    rcs = [
        *lab.round_changes(2, lab.keys[:1], prepared=(0, digest(older))),
        *lab.round_changes(2, lab.keys[1:2], prepared=(1, digest(newer))),
        *lab.round_changes(2, lab.keys[2:3]),
    ]
    stale = Proposal.create(
        p2,
        1,
        2,
        older.with_header(with_round(older.header, 2)),
        rcs,
        lab.prepares(older, 0, lab.keys[:3]),
    )
    assert "highest prepared certificate" in rejection(lab.feed(stale, now=9.0))
    best = Proposal.create(
        p2,
        1,
        2,
        newer.with_header(with_round(newer.header, 2)),
        rcs,
        lab.prepares(newer, 1, lab.keys[:3]),
    )
    assert prepared_in(lab.feed(best, now=9.0), 2)


def test_round_change_validation() -> None:
    lab = Lab()
    p0 = lab.proposer_key(0)
    block = lab.block(p0, 0)
    meta = PreparedRoundMetadata(0, digest(block))
    prepares = lab.prepares(block, 0, lab.keys[:3])
    k = lab.others(3)
    bad = [
        (RoundChange.create(k[0], 1, 0), "round change to round 0"),
        (RoundChange.create(k[0], 1, 1, None, block), "without prepared-round metadata"),
        (RoundChange.create(k[0], 1, 1, meta), "metadata without its block"),
        (RoundChange.create(k[0], 1, 1, meta, block, prepares[:2]), "2 prepares, 3 required"),
        (
            RoundChange.create(
                k[0], 1, 1, PreparedRoundMetadata(1, meta.block_hash), block, prepares
            ),
            "not below the target",
        ),
        (
            RoundChange.create(k[0], 1, 1, PreparedRoundMetadata(0, b"\x07" * 32), block, prepares),
            "does not match its block",
        ),
    ]
    for message, reason in bad:
        assert reason in rejection(lab.feed(message))
    # Duplicated prepares inside a round change are deduplicated, not fatal (besu#2449).
    good = [
        RoundChange.create(k[0], 1, 1, meta, block, [*prepares, prepares[1]]),
        RoundChange.create(k[0], 1, 1),  # a second one from the same author: ignored
        RoundChange.create(k[1], 1, 1),
    ]
    for message in good:
        assert lab.feed(message, now=3.0) == [Regossip(message)]
    # The third author completes a quorum for round 1: the observer moves there.
    actions = lab.feed(RoundChange.create(k[2], 1, 1), now=3.0)
    assert StartTimer("round", 1, 1, 4.0) in actions
    assert lab.machine.round == 1
    # Once round 1 times out, round changes targeting round 1 are no longer kept.
    lab.machine.handle(RoundTimerExpired(1, 1, 7.0))
    assert lab.machine.round == 2
    late = RoundChange.create(k[1], 1, 1, meta, block, prepares)
    assert lab.feed(late, now=7.0) == [Regossip(late)]
    assert 1 not in lab.machine._height.round_changes  # type: ignore[union-attr]


def test_future_round_prepares_and_commits_are_adopted_when_the_round_starts() -> None:
    lab = Lab()
    p1 = lab.proposer_key(1)
    block = lab.block(p1, 1, timestamp=2)
    others = lab.others(lab.q - 1)
    early: list[QbftMessage] = [
        *[Prepare.create(k, 1, 1, digest(block)) for k in others],
        *[
            Commit.create(k, 1, 1, digest(block), k.sign_msg_hash(digest(block)).to_bytes())
            for k in others
        ],
    ]
    for message in early:
        assert lab.feed(message) == [Regossip(message)]
    actions = lab.feed(Proposal.create(p1, 1, 1, block, lab.round_changes(1, lab.keys[: lab.q])))
    sent = [type(a.message) for a in actions if isinstance(a, Broadcast)]
    assert sent == [Prepare, Commit]
    commits = [a for a in actions if isinstance(a, CommitBlock)]
    assert len(commits) == 1 and commits[0].round == 1
    assert len(check_sealed(commits[0].block, lab.validators)) == lab.q


def test_a_forged_commit_seal_is_rejected() -> None:
    lab = Lab()
    p0 = lab.proposer_key(0)
    block = lab.block(p0, 0)
    lab.feed(Proposal.create(p0, 1, 0, block))
    k = lab.others(2)
    wrong_round = commit_seal_hash(block.header, 1)
    forged = Commit.create(k[0], 1, 0, digest(block), k[1].sign_msg_hash(digest(block)).to_bytes())
    other_round = Commit.create(
        k[0], 1, 0, digest(block), k[0].sign_msg_hash(wrong_round).to_bytes()
    )
    for message in (forged, other_round):
        assert "commit seal is not the author's" in rejection(lab.feed(message))


def test_buffered_future_height_messages_are_replayed_after_import() -> None:
    lab = Lab()
    p0 = lab.proposer_key(0)
    block = lab.block(p0, 0)
    lab.builder.commit(lab.builder.reexecute(block.header, ()), block.header)
    signers = lab.keys[: lab.q]
    sealed = block.header.copy(
        extra_data=replace(
            QbftExtraData.decode(block.header.extra_data),
            seals=tuple(k.sign_msg_hash(digest(block)).to_bytes() for k in signers),
        ).encode()
    )
    ahead = Prepare.create(lab.keys[0], 2, 0, b"\x05" * 32)
    assert lab.feed(ahead) == [RequestSync(2)]
    import_block(lab.chain, sealed, ())
    actions = lab.machine.handle(NewChainHead(lab.chain.head, 2.0))
    assert Regossip(ahead) in actions
    assert lab.machine.height == 2


def test_f_plus_one_round_changes_pull_a_laggard_forward_only_when_enabled() -> None:
    for enabled in (False, True):
        genesis = make_genesis(4)
        lab = Lab(config=QbftConfig.from_genesis(genesis, early_round_change=enabled))
        k = lab.others(2)
        first = RoundChange.create(k[0], 1, 5)
        assert lab.feed(first, now=3.0) == [Regossip(first)]
        actions = lab.feed(RoundChange.create(k[1], 1, 7), now=3.0)
        moved = [a for a in actions if isinstance(a, StartTimer)]
        if enabled:
            assert moved == [StartTimer("round", 1, 5, 30.0)]
            rc = [a.message for a in actions if isinstance(a, Broadcast)]
            assert len(rc) == 1 and isinstance(rc[0], RoundChange) and rc[0].round == 5
            assert lab.machine.round == 5
        else:
            assert moved == [] and lab.machine.round == 0


# ---------------------------------------------------------------------------------------------
# Whole networks (§6 items 6, 7 and 9)


def test_a_block_prepared_in_round_zero_is_re_proposed_in_round_one() -> None:
    net = Network(4)
    net.filter = lambda src, dst, msg: not (isinstance(msg, Commit) and msg.round == 0)
    net.start()
    assert net.run_until_height(1, limit=30) == [1] * 4
    net.assert_consistent()
    validators = net.genesis.validators
    p0 = proposer(validators, b"\x00" * 20, 0)
    locked = next(m for m in net.node_of(p0).sent if isinstance(m, Proposal) and m.round == 0)
    p1 = proposer(validators, b"\x00" * 20, 1)
    reproposal = next(m for m in net.node_of(p1).sent if isinstance(m, Proposal) and m.round == 1)
    assert len(reproposal.prepares) >= quorum(4)
    for node in net.nodes:
        block = node.sealed[1]
        assert block.header.coinbase == p0  # the original proposer's, not round 1's
        assert QbftExtraData.decode(block.header.extra_data).round == 1
        assert onchain_hash(block.header) == onchain_hash(locked.block.header)
        assert len(check_sealed(block, validators)) >= quorum(4)
    assert net.run_until_height(3, limit=30) == [3] * 4


def equivocate(net: Network, byzantine: SimNode, groups: tuple[set[int], set[int]]) -> None:
    """Make `byzantine` send one round-0 block to one group and another block to the other."""
    twin: dict[str, QbftBlock] = {}

    def intercept(node: SimNode, action: Broadcast) -> bool:
        message = action.message
        if node is not byzantine or message.height != 1 or message.round != 0:
            return False
        if isinstance(message, Proposal):
            twin["a"] = message.block
            twin["b"] = build_block(
                node.chain, node.address, 0, message.block.header.timestamp, transfers(1)
            )
        variants: dict[str, QbftMessage] = {}
        for name, block in twin.items():
            d = digest(block)
            if isinstance(message, Proposal):
                variants[name] = Proposal.create(node.key, 1, 0, block)
            elif isinstance(message, Prepare):
                variants[name] = Prepare.create(node.key, 1, 0, d)
            elif isinstance(message, Commit):
                variants[name] = Commit.create(
                    node.key, 1, 0, d, node.key.sign_msg_hash(d).to_bytes()
                )
            else:
                return False
        for name, group in zip(("a", "b"), groups, strict=True):
            for dst in group:
                net.send(node.index, dst, variants[name])
        return True

    net.intercept = intercept


@pytest.mark.parametrize("split", [1, 2])
def test_an_equivocating_proposer_cannot_fork_the_honest_nodes(split: int) -> None:
    net = Network(4, gossip=True)
    p0 = proposer(net.genesis.validators, b"\x00" * 20, 0)
    byzantine = net.node_of(p0)
    byzantine.honest = False
    honest = [n.index for n in net.nodes if n.honest]
    equivocate(net, byzantine, (set(honest[:split]), set(honest[split:])))
    net.start()
    assert net.run_until_height(3, limit=120) == [3, 3, 3]
    net.assert_consistent()
    for node in net.nodes:
        if node.honest:
            accepted = [m for m in node.sent if isinstance(m, Prepare) and m.height == 1]
            assert len({m.round for m in accepted}) == len(accepted)  # one per round


@pytest.mark.parametrize(("n", "crashed"), [(4, 1), (7, 2)])
def test_progress_with_f_crashed_validators(n: int, crashed: int) -> None:
    net = Network(n)
    validators = net.genesis.validators
    # Crash the first proposers so that rounds must change.
    for round_number in range(crashed):
        net.node_of(proposer(validators, b"\x00" * 20, round_number)).alive = False
    net.start()
    assert net.run_until_height(4, limit=120) == [4] * (n - crashed)
    net.assert_consistent()


def test_f_plus_one_partitioned_stalls_then_recovers_when_healed() -> None:
    net = Network(4)
    net.partition({2, 3})
    net.start()
    net.run(until=600.0)
    assert [node.head for node in net.nodes] == [0, 0, 0, 0]
    rounds = {node.machine.round for node in net.nodes}
    assert len(rounds) == 1  # timers capped, still in lockstep
    round_number = rounds.pop()
    assert round_number is not None and round_number > 10
    net.heal()
    healed_at = net.now
    assert net.run_until_height(2, limit=120) == [2] * 4
    # Capped rounds: the first round after healing ends within one cap (plus a block).
    assert net.now - healed_at < 2 * 30 + 5
    net.assert_consistent()


@pytest.mark.parametrize("early", [False, True])
def test_a_restarted_laggard_rejoins_capped_rounds_only_with_early_round_change(
    early: bool,
) -> None:
    genesis = make_genesis(4)
    net = Network(4, config=QbftConfig.from_genesis(genesis, early_round_change=early))
    net.partition({2, 3})
    net.start()
    net.run(until=600.0)
    net.nodes[2].alive = False  # one validator stays down (f = 1)
    net.restart(net.nodes[3])  # the other comes back at round 0 of the same height
    net.heal()
    heads = net.run_until_height(1, limit=300, nodes=[net.nodes[0], net.nodes[1], net.nodes[3]])
    if early:
        assert heads == [1, 1, 1]
    else:
        # With capped timers the restarted node climbs rounds exactly as fast as the others
        # advance, so without the f+1 rule it never meets them: enable it with the cap.
        assert heads == [0, 0, 0]
    net.assert_consistent()


@pytest.mark.parametrize(
    ("seed", "n", "gossip", "drop"),
    [(11, 4, True, 0.3), (44, 4, False, 0.3), (55, 4, False, 0.3), (7, 7, False, 0.2)],
)
def test_liveness_and_safety_on_a_lossy_reordering_network(
    seed: int, n: int, gossip: bool, drop: float
) -> None:
    net = Network(n, seed=seed, delay=(0.0, 1.0), drop=drop, duplicate=0.1, gossip=gossip)
    net.start()
    assert net.run_until_height(4, limit=600) == [4] * n
    net.assert_consistent()
    rounds = [
        QbftExtraData.decode(header_at(net.nodes[0].chain, h).extra_data).round for h in range(1, 5)
    ]
    assert max(rounds) > 0  # these schedules do exercise round changes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([4, 5, 7]),
    loss=st.floats(0.0, 1.0),
    gossip=st.booleans(),
    crash=st.booleans(),
)
def test_no_fork_under_random_schedules(
    seed: int, n: int, loss: float, gossip: bool, crash: bool
) -> None:
    """Safety always; liveness while losses stay within what re-gossip (or its absence) masks.

    Without re-gossip or retransmission (devp2p runs over TCP, so real links do not drop), a
    round needs nearly every one of ~n^2 messages delivered once f is already crashed, so
    heavy loss there only slows progress down; 10% (30% with gossip) is kept to bound time.
    """
    drop = loss * (0.3 if gossip else 0.1)
    net = Network(n, seed=seed, delay=(0.0, 1.5), drop=drop, duplicate=0.2, gossip=gossip)
    if crash:
        net.nodes[net.rng.randrange(n)].alive = False
    net.start()
    net.run_until_height(3, limit=600)
    net.assert_consistent()
    assert min(node.head for node in net.nodes if node.alive) >= 3


def test_a_proposer_prepares_its_own_block_only_if_it_validates() -> None:
    class RejectingPort(ChainPort):
        def validate_block(self, block: QbftBlock) -> bool:
            return False

    for port_class, prepares in ((ChainPort, 1), (RejectingPort, 0)):
        genesis = make_genesis(4)
        key = validator_keys(4)[0]  # proposes height 1, round 0
        chain = new_chain(genesis)
        port = port_class(chain, key.public_key.to_canonical_address())
        machine = QbftStateMachine(key, port, QbftConfig.from_genesis(genesis))
        machine.handle(NewChainHead(chain.head, 0.0))
        actions = machine.handle(BlockTimerExpired(1, 1.0))
        sent = [type(a.message) for a in actions if isinstance(a, Broadcast)]
        assert sent == [Proposal] + [Prepare] * prepares
