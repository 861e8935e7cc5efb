"""The asyncio edge around the pure QBFT state machine: network, timers and the chain.

`QbftEngine` is the only async code of consensus: it decodes CONSENSUS messages from p2p,
turns timers and chain-head changes into events, hands each event to
`QbftStateMachine.handle` (in a worker thread, under the chain lock, since the block port
executes blocks), and performs the returned actions, every action type explicitly (a
received message is relayed only when the machine's `Regossip` says it passed its checks).
It reaches the network and block sync only through `node.consensus.links`. `ChainBlockPort`
adapts `Chain` and the pool to the machine's `BlockPort`, keeping each executed block's
pending batch (in `ExecutedBlocks`, shared with block sync) so that a committed block is
written without executing it a third time.

Two things here exist for throughput when validators share cores (`node.consensus.scheduling`
says why they keep QBFT's guarantees): a proposer sends its round-0 block's state diff to the
f validators proposing last, which check the proposal against it instead of re-executing;
and such a validator without a diff re-executes on a low-priority thread. One exists for
latency: the next round-0 proposer executes its block while its block timer runs
(`node.consensus.speculation`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import assert_never

from eth.abc import BlockHeaderAPI
from eth_typing import Address

from node.chain.admitted import Executable
from node.chain.chain import Chain, PendingBlock
from node.chain.diff_import import decode_diff_message, encode_diff_message, import_with_diff
from node.chain.executor import BlockRejected
from node.chain.importer import AdmittedLookup, substitute_admitted
from node.chain.notifications import ChainEvents, CommittedBlock
from node.chain.state_diff import DiffRejected
from node.consensus.block_codec import decode_message, decode_proposal
from node.consensus.build_budget import BuildBudget
from node.consensus.executed import ExecutedBlocks
from node.consensus.links import ConsensusLinks, ConsensusSync, Linked
from node.consensus.qbft.messages import (
    PROPOSAL,
    MessageError,
    Proposal,
    QbftBlock,
    QbftMessage,
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
    proposal_timestamp,
)
from node.consensus.qbft.validators import proposer
from node.consensus.scheduling import deferring_validators
from node.consensus.speculation import (
    SPECULATION_MARGIN_SECONDS,
    SPECULATION_POLL_SECONDS,
    Speculation,
    finish_or_build,
    speculation_on_head,
)
from node.consensus.voting import VoteProposals
from node.lowpriority import low_priority_executor
from node.metrics import NodeMetrics
from node.p2p.messages import MessageKind
from node.qbftheader.extra_data import VANITY_LENGTH, QbftExtraData
from node.qbftheader.hashing import onchain_hash
from node.signer import NodeSigner
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

_MAX_STATE_DIFFS = 4
"""Diffs kept for proposals not yet validated (one per height is the normal case)."""
BUILD_BUDGET_SHARE = 0.5
"""Share of the block period a proposer may spend executing transactions.

Every validator re-executes the proposal before it prepares, and the round timer runs
meanwhile; a proposal that takes longer to execute than the round allows is never decided
(observed: 2,857-transfer blocks took three rounds on 2 cores). Capping the proposer's
execution time bounds everyone's. 0.5 since only 2f validators re-execute the proposal
(`node.consensus.scheduling`): on the 4-validator localnet (2 cores, ERC-20 transfers, runs
alternated) 0.5 gave 367-450 tx/s and 0.6 379-392 with more round changes; 0.4 trailed 0.6.
The budget is this share at most: `BuildBudget` shrinks it while heights near the timeout."""


class ChainBlockPort:
    """`BlockPort` over the node's chain: build from the pool, validate by re-execution (or,
    for the designated validators, against the proposer's state diff)."""

    def __init__(
        self,
        chain: Chain,
        key: NodeSigner,
        proposals: VoteProposals,
        select_transactions: Callable[[], list[PooledTransaction]],
        budget: BuildBudget,
        executed: ExecutedBlocks,
        admitted: AdmittedLookup = lambda tx_hash: None,
    ) -> None:
        self.chain = chain
        self.address = key.public_key.to_canonical_address()
        self.proposals = proposals
        self.select_transactions = select_transactions
        self.admitted = admitted
        self.executed = executed
        """Blocks executed (or accepted from a diff) here, kept for their commit."""
        self.diffs: OrderedDict[bytes, bytes] = OrderedDict()
        """State diff messages received, by the hash of the block they describe."""
        self.outgoing_diff: tuple[bytes, bytes, frozenset[bytes]] | None = None
        """(block hash, diff message, recipients) for this node's latest round-0 proposal."""
        self.budget = budget
        """How long a proposer may execute; the engine feeds it each height's duration."""
        self.speculation: Speculation | None = None
        """This node's next block, opened before its block timer fired."""

    def validators_after(self, header: BlockHeaderAPI) -> Sequence[bytes]:
        return self.chain.validator_tally(onchain_hash(header)).validators

    def create_block(self, parent: BlockHeaderAPI, round_number: int, timestamp: int) -> QbftBlock:
        tally = self.chain.validator_tally(self.chain.head_hash)
        extra = QbftExtraData(
            vanity=self._vanity(),
            validators=tally.validators,
            vote=self.proposals.next_vote(tally, self.address),
            round=round_number,
            seals=(),
        )
        started = time.perf_counter()
        selection = self.select_transactions()
        budget = self.budget.seconds
        speculation, self.speculation = self.speculation, None  # used once, whatever happens
        pending, ahead = finish_or_build(
            self.chain,
            speculation,
            selection,
            timestamp=timestamp,
            coinbase=self.address,
            extra_data=extra.encode(),
            budget=budget,
        )
        self._keep(pending)
        self.outgoing_diff = None
        checkers = self.diff_checkers(round_number) - {self.address}
        if checkers:
            block_hash = onchain_hash(pending.header)
            message = encode_diff_message(block_hash, pending.executed)
            self.outgoing_diff = (block_hash, message, checkers)
        log.info(
            "built block %d: %d of %d selected txs in %.0f ms (budget %.0f ms), "
            "%d of them executed ahead of the timer",
            pending.header.block_number,
            len(pending.executed.transactions),
            len(selection),
            (time.perf_counter() - started) * 1000,
            budget * 1000,
            ahead,
        )
        return QbftBlock(pending.header, tuple(item.tx for item in pending.executed.transactions))

    def speculate(self, timestamp: int, until: float) -> None:
        """Open this node's next block on the head, or add to it, what the pool holds now
        (worker thread, under the chain lock; see `node.consensus.speculation`). `until`
        (`time.monotonic()`) is when the block timer is about to fire."""
        speculation = self.speculation = speculation_on_head(
            self.chain,
            self.speculation,
            timestamp=timestamp,
            coinbase=self.address,
            extra_data=self._unvoted_extra,
        )
        if speculation.spent < self.budget.seconds:
            speculation.apply(self.select_transactions(), self.budget.seconds, until)

    def _vanity(self) -> bytes:
        return self.chain.genesis.vanity.rjust(VANITY_LENGTH, b"\x00")

    def _unvoted_extra(self) -> bytes:
        """extraData for a block opened early: its vote and round are chosen when it is
        finished (no opcode reads them)."""
        tally = self.chain.validator_tally(self.chain.head_hash)
        return QbftExtraData(self._vanity(), tally.validators, None, 0, ()).encode()

    def diff_checkers(self, round_number: int) -> frozenset[bytes]:
        """Validators that check the next block's round-0 proposal against its state diff.

        See `node.consensus.scheduling`: the f validators whose turn to propose is furthest
        away, the same f in every round of a height (which is what bounds the validators
        that did not re-execute in any quorum). Proposers send diffs in round 0 only; a block
        first proposed in a later round (something already went wrong) is re-executed.
        """
        if round_number != 0:
            return frozenset()
        validators = self.chain.validator_tally(self.chain.head_hash).validators
        return deferring_validators(validators, self.chain.head.coinbase)

    def receive_diff(self, payload: bytes) -> None:
        """Keep a proposer's diff message until its proposal is validated (event loop)."""
        if len(payload) > 32:
            self.diffs[payload[:32]] = payload
            while len(self.diffs) > _MAX_STATE_DIFFS:
                self.diffs.popitem(last=False)

    def take_outgoing_diff(self, message: QbftMessage) -> tuple[bytes, frozenset[bytes]] | None:
        """The state diff message to send, and to whom, before `message` goes out: only for
        this node's own latest round-0 proposal, and only once."""
        outgoing = self.outgoing_diff
        if outgoing is None or not isinstance(message, Proposal):
            return None
        block_hash, payload, recipients = outgoing
        if onchain_hash(message.block.header) != block_hash:
            return None
        self.outgoing_diff = None
        return payload, recipients

    def validate_block(self, block: QbftBlock) -> bool:
        key = onchain_hash(block.header)
        if key in self.executed:
            return True
        started = time.perf_counter()
        transactions = substitute_admitted(block.transactions, self.admitted)
        pending = self._check_against_diff(key, block, transactions)
        if pending is None:
            try:
                pending = self.chain.reexecute(block.header, transactions)
            except BlockRejected as exc:
                log.warning("proposal for block %d rejected: %s", block.number, exc)
                return False
        self._keep(pending)
        log.info(
            "validated block %d: %d txs %s in %.0f ms",
            block.number,
            len(transactions),
            "against the state diff" if pending.executed.state_diff is None else "by execution",
            (time.perf_counter() - started) * 1000,
        )
        return True

    def _check_against_diff(
        self, key: bytes, block: QbftBlock, transactions: list[Executable]
    ) -> PendingBlock | None:
        """The pending block from the proposer's state diff, if this node is designated to
        check this proposal that way and the diff holds up; else None (re-execute)."""
        payload = self.diffs.pop(key, None)
        if payload is None:
            return None
        round_number = QbftExtraData.decode(block.header.extra_data).round
        if self.address not in self.diff_checkers(round_number):
            return None
        try:
            _, diff, receipts = decode_diff_message(payload)
            return import_with_diff(self.chain, block.header, transactions, diff, receipts)
        except DiffRejected as exc:
            log.info("state diff for block %d not used: %s", block.number, exc)
            return None

    def _keep(self, pending: PendingBlock) -> None:
        self.executed.keep(onchain_hash(pending.header), pending)

    def commit(self, sealed: BlockHeaderAPI, block: QbftBlock) -> tuple[bytes, set[Address]]:
        """Write a decided block; re-executes only if its execution was not kept.

        Returns its hash and its transactions' senders (recovered at execution, for the pool).
        """
        pending = self.executed.pop(onchain_hash(sealed))
        if pending is None or pending.parent_hash != self.chain.head_hash:
            transactions = substitute_admitted(block.transactions, self.admitted)
            pending = self.chain.reexecute(sealed, transactions)
        block_hash = self.chain.commit(pending, sealed)
        self.executed.clear()
        self.speculation = None
        return block_hash, {item.sender for item in pending.executed.transactions}


class QbftEngine:
    """Runs one validator's QBFT over p2p; implements `ConsensusEngine`."""

    def __init__(
        self,
        chain: Chain,
        pool: TxPool,
        events: ChainEvents,
        key: NodeSigner,
        p2p: ConsensusLinks,
        sync: ConsensusSync,
        chain_lock: asyncio.Lock,
        proposals: VoteProposals,
        metrics: NodeMetrics,
        executed: ExecutedBlocks,
        config: QbftConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`executed` is shared with block sync, which writes a decided block that arrives
        from a peer from this validator's execution of it."""
        self.chain = chain
        self.pool = pool
        self.events = events
        self.p2p = p2p
        self.sync = sync
        self.chain_lock = chain_lock
        self.metrics = metrics
        self.clock = clock
        self.address = key.public_key.to_canonical_address()
        # Round timeouts are capped (no hour-long rounds after an outage), so a validator that
        # restarts at round 0 would never catch up with peers climbing rounds at the same pace;
        # the f+1 early round change (as in the QBFT spec) pulls it forward.
        # A round whose proposer has no link to us (while a quorum does) lasts half the
        # request timeout instead of waiting out a dead proposer's whole round.
        config = config or QbftConfig.from_genesis(
            chain.genesis,
            early_round_change=True,
            absent_proposer_timeout_seconds=chain.genesis.request_timeout_seconds / 2,
        )
        budget = BuildBudget(
            config.block_period_seconds, config.round_timeout(0), BUILD_BUDGET_SHARE
        )
        self.port = ChainBlockPort(
            chain, key, proposals, self._select_from_pool, budget, executed, pool.admitted
        )
        self.machine = QbftStateMachine(key, self.port, config)
        self._block_period = config.block_period_seconds
        self._speculating: set[asyncio.Task[None]] = set()
        self._round0_started: dict[int, float] = {}
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_round = -1
        self._deferred = low_priority_executor()
        self._running = False
        p2p.on_peer_connected(self._on_peer_connected)
        p2p.on_peer_disconnected(self._on_peer_disconnected)

    def transactions_pending(self) -> None:
        """Nothing to do: the proposer takes what the pool holds when its block timer fires."""

    def _select_from_pool(self) -> list[PooledTransaction]:
        """Called from the worker thread: the pool lives on the event loop."""
        assert self._loop is not None

        async def select() -> list[PooledTransaction]:
            head = self.chain.head
            return self.pool.select(head.gas_limit, self.chain.child_base_fee(head))

        return asyncio.run_coroutine_threadsafe(select(), self._loop).result(timeout=30)

    def _on_consensus_message(self, peer: bytes, payload: bytes) -> bool:
        """Queue a message for the machine. Never relayed by the host as it arrives: the
        machine asks for that (`Regossip`) once the message passed its checks."""
        if not payload:
            return False
        try:
            message: QbftMessage | None = None
            if payload[0] == PROPOSAL:
                message = decode_proposal(payload[1:], self.pool.decoded)
            if message is None:
                message = decode_message(payload[0], payload[1:])
        except MessageError as exc:
            log.info("undecodable consensus message from 0x%s: %s", peer.hex(), exc)
            return False
        if message.height > self.chain.head.block_number + 1:
            self.sync.head_hint(peer, message.height)
        self._queue.put_nowait(MessageReceived(message, self.clock()))
        return False

    def _on_state_diff(self, peer: bytes, payload: bytes) -> bool:
        """Keep a validator's diff; whether it is used is decided at validation."""
        if peer in self.chain.validator_tally(self.chain.head_hash).validators:
            self.port.receive_diff(payload)
        return True

    def _on_block(self, block: CommittedBlock) -> None:
        self._queue.put_nowait(NewChainHead(block.header, self.clock()))

    def _on_peer_connected(self, peer: Linked) -> None:
        """A (re)connected peer may have missed our round's messages: the machine re-sends."""
        if self._running:
            self._queue.put_nowait(PeerConnected(peer.address, self.clock()))

    def _on_peer_disconnected(self, peer: Linked) -> None:
        if self._running:
            self._queue.put_nowait(PeerDisconnected(peer.address, self.clock()))

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        unsubscribe = self.p2p.subscribe(MessageKind.CONSENSUS, self._on_consensus_message)
        stop_diffs = self.p2p.subscribe(MessageKind.STATE_DIFF, self._on_state_diff)
        stop_listening = self.events.on_block(self._on_block)
        self._queue.put_nowait(NewChainHead(self.chain.head, self.clock()))
        self._running = True
        for info in self.p2p.peers():  # links made before we listened
            self._queue.put_nowait(PeerConnected(info.address, self.clock()))
        try:
            while True:
                event = await self._queue.get()
                async with self.chain_lock:
                    executor = self._deferred if self._may_defer(event) else None
                    actions = await self._loop.run_in_executor(executor, self.machine.handle, event)
                    for action in actions:
                        await self._perform(action)
        finally:
            self._running = False
            unsubscribe()
            stop_diffs()
            stop_listening()
            for handle in self._timers.values():
                handle.cancel()
            for task in self._speculating:
                task.cancel()
            if self._speculating:
                await asyncio.wait(self._speculating)
            self._deferred.shutdown(wait=False)

    def _may_defer(self, event: Event) -> bool:
        """Whether `event` is a round-0 proposal this validator may validate at low priority.

        See `node.consensus.scheduling`: the f validators proposing last in the rotation are
        not needed for the quorum when everyone is up, so they leave the CPU to those that are.
        Later rounds (something already went wrong) are validated at full priority.
        """
        if not isinstance(event, MessageReceived):
            return False
        message = event.message
        head = self.chain.head
        if (
            not isinstance(message, Proposal)
            or message.round != 0
            or message.height != head.block_number + 1
        ):
            return False
        if onchain_hash(message.block.header) in self.port.diffs:
            return False  # checking it against the proposer's state diff is cheap
        return self.address in self.port.diff_checkers(0)

    async def _perform(self, action: Action) -> None:
        match action:
            case Broadcast():
                self._send_state_diff(action.message)
                self.p2p.gossip(MessageKind.CONSENSUS, bytes([action.code]) + action.data)
            case SendTo():
                self.p2p.send(
                    action.peer, MessageKind.CONSENSUS, bytes([action.code]) + action.data
                )
            case Regossip():
                # The sender (usually the author) drops its echo: it has seen the message.
                self.p2p.broadcast(
                    MessageKind.CONSENSUS,
                    bytes([action.code]) + action.data,
                    exclude=(action.message.author,),
                )
            case StartTimer():
                self._start_timer(action)
                if action.kind == "block":
                    self._plan_speculation(action)
            case CommitBlock():
                await self._commit(action)
            case RequestSync():
                self.sync.want(action.height - 1)
            case Log():
                log.log(action.level, action.text)
            case _:
                assert_never(action)

    def _send_state_diff(self, message: QbftMessage) -> None:
        """Before our own proposal goes out, send its state diff to the validators that will
        check it against the diff (the same link delivers the diff first)."""
        outgoing = self.port.take_outgoing_diff(message)
        if outgoing is not None:
            payload, recipients = outgoing
            for recipient in recipients:
                self.p2p.send(recipient, MessageKind.STATE_DIFF, payload)

    def _start_timer(self, timer: StartTimer) -> None:
        assert self._loop is not None
        previous = self._timers.pop(timer.kind, None)
        if previous is not None:
            previous.cancel()
        if timer.kind == "round" and timer.round == 0:
            self._round0_started.setdefault(timer.height, time.monotonic())
        if timer.kind == "round" and timer.round != self._last_round:
            if timer.round > 0:
                self.metrics.round_changes.inc()
            self._last_round = timer.round
            self.metrics.round.set(timer.round)

        def fire() -> None:
            now = self.clock()
            if timer.kind == "block":
                self._queue.put_nowait(BlockTimerExpired(timer.height, now))
            else:
                self._queue.put_nowait(RoundTimerExpired(timer.height, timer.round, now))

        self._timers[timer.kind] = self._loop.call_later(max(0.0, timer.delay_seconds), fire)

    def _plan_speculation(self, timer: StartTimer) -> None:
        """If this node proposes first at the height whose block timer starts, execute its
        block while the timer runs (`node.consensus.speculation`)."""
        head = self.chain.head
        if timer.height != head.block_number + 1 or timer.delay_seconds <= 0:
            return
        validators = self.chain.validator_tally(self.chain.head_hash).validators
        if self.address not in validators or proposer(validators, head.coinbase, 0) != self.address:
            return
        on_time = head.timestamp + self._block_period  # when the block timer fires
        timestamp = proposal_timestamp(head, self._block_period, on_time)
        until = time.monotonic() + timer.delay_seconds - SPECULATION_MARGIN_SECONDS
        task = asyncio.create_task(self._speculate(timer.height, timestamp, until))
        self._speculating.add(task)
        task.add_done_callback(self._speculating.discard)

    async def _speculate(self, height: int, timestamp: int, until: float) -> None:
        """Take in what the pool received, every poll until shortly before the block timer,
        each time under the chain lock, so the state machine never sees the head move."""
        taken = -1
        while time.monotonic() < until:
            if self.pool.arrivals != taken:
                taken = self.pool.arrivals
                if not await self._speculate_once(height, timestamp, until):
                    return
            await asyncio.sleep(SPECULATION_POLL_SECONDS)

    async def _speculate_once(self, height: int, timestamp: int, until: float) -> bool:
        """One batch into the open block; False once there is nothing more to do for it."""
        assert self._loop is not None
        async with self.chain_lock:
            if self.chain.head.block_number + 1 != height:
                return False
            work = self._loop.run_in_executor(None, self.port.speculate, timestamp, until)
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])  # stopping: not while the chain is in use
                raise
            except Exception:
                log.exception("executing block %d ahead of its timer failed", height)
                self.port.speculation = None
                return False
        return True

    async def _commit(self, action: CommitBlock) -> None:
        """Write the decided block; the machine already sealed its header."""
        assert self._loop is not None
        sealed = action.block.header
        started = time.perf_counter()
        try:
            block_hash, senders = await self._loop.run_in_executor(
                None, self.port.commit, sealed, action.block
            )
        except BlockRejected as exc:
            if self.chain.store.canonical_hash(sealed.block_number) == onchain_hash(sealed):
                return  # a peer's announcement of this very block was imported first
            log.error("decided block %d could not be committed: %s", sealed.block_number, exc)
            return
        elapsed = time.perf_counter() - started
        self.metrics.block_import.observe(elapsed)
        round0 = self._round0_started.pop(sealed.block_number, None)
        if round0 is not None:
            self.port.budget.observe(time.monotonic() - round0, action.round)
        for height in [h for h in self._round0_started if h < sealed.block_number]:
            del self._round0_started[height]
        included = tuple(self.chain.store.block_tx_hashes(block_hash))
        self.pool.on_new_block(
            included,
            self.chain.state_at(self.chain.head),
            senders=senders,
        )
        log.info(
            "committed block %d hash=%s round=%d seals=%d txs=%d in %.0f ms",
            sealed.block_number,
            block_hash.hex()[:16],
            action.round,
            len(action.seals),
            len(included),
            elapsed * 1000,
        )
        self.events.publish_block(CommittedBlock(block_hash, self.chain.head, included))
