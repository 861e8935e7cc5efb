"""The asyncio edge around the pure QBFT state machine: network, timers and the chain.

`QbftEngine` is the only async code of consensus: it decodes CONSENSUS messages from p2p,
turns timers and chain-head changes into events, hands each event to
`QbftStateMachine.handle` (in a worker thread, under the chain lock, since the block port
executes blocks), and performs the returned actions. `ChainBlockPort` adapts `Chain` and the
pool to the machine's `BlockPort`, keeping each executed block's pending batch so that a
committed block is written without executing it a third time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from eth.abc import BlockHeaderAPI
from eth_keys import keys

from node.chain.chain import Chain, PendingBlock
from node.chain.events import ChainEvents, CommittedBlock
from node.chain.executor import BlockRejected
from node.chain.importer import AdmittedLookup, substitute_admitted
from node.consensus.extra_data import VANITY_LENGTH, QbftExtraData
from node.consensus.hashing import onchain_hash
from node.consensus.qbft.messages import MessageError, QbftBlock, decode_message
from node.consensus.qbft.state_machine import (
    BlockTimerExpired,
    Broadcast,
    CommitBlock,
    Event,
    Log,
    MessageReceived,
    NewChainHead,
    QbftConfig,
    QbftStateMachine,
    Regossip,
    RequestSync,
    RoundTimerExpired,
    StartTimer,
)
from node.consensus.voting import VoteProposals
from node.metrics import NodeMetrics
from node.p2p.host import P2PHost
from node.p2p.messages import MessageKind
from node.sync import BlockSync
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

_MAX_PENDING_BLOCKS = 16
BUILD_BUDGET_SHARE = 0.4
"""Share of the block period a proposer may spend executing transactions.

Every validator re-executes the proposal before it prepares, and the round timer runs
meanwhile; a proposal that takes longer to execute than the round allows is never decided
(observed: 2,857-transfer blocks took three rounds on 2 cores). Capping the proposer's
execution time bounds everyone's."""


class ChainBlockPort:
    """`BlockPort` over the node's chain: build from the pool, validate by re-execution."""

    def __init__(
        self,
        chain: Chain,
        key: keys.PrivateKey,
        proposals: VoteProposals,
        select_transactions: Callable[[], list[PooledTransaction]],
        admitted: AdmittedLookup = lambda tx_hash: None,
    ) -> None:
        self.chain = chain
        self.address = key.public_key.to_canonical_address()
        self.proposals = proposals
        self.select_transactions = select_transactions
        self.admitted = admitted
        self.pending: dict[bytes, PendingBlock] = {}
        self.last_selection: list[PooledTransaction] = []

    def validators_after(self, header: BlockHeaderAPI) -> Sequence[bytes]:
        return self.chain.validator_tally(onchain_hash(header)).validators

    def create_block(self, parent: BlockHeaderAPI, round_number: int, timestamp: int) -> QbftBlock:
        tally = self.chain.validator_tally(self.chain.head_hash)
        extra = QbftExtraData(
            vanity=self.chain.genesis.vanity.rjust(VANITY_LENGTH, b"\x00"),
            validators=tally.validators,
            vote=self.proposals.next_vote(tally, self.address),
            round=round_number,
            seals=(),
        )
        selection = self.select_transactions()
        budget = BUILD_BUDGET_SHARE * self.chain.genesis.block_period_seconds
        pending = self.chain.build(
            [item.tx for item in selection],
            timestamp=timestamp,
            coinbase=self.address,
            extra_data=extra.encode(),
            tx_hashes={id(item.tx): item.hash for item in selection},
            deadline=time.monotonic() + budget,
        )
        self.last_selection = selection
        self._keep(pending)
        return QbftBlock(pending.header, tuple(item.tx for item in pending.executed.transactions))

    def validate_block(self, block: QbftBlock) -> bool:
        key = onchain_hash(block.header)
        if key in self.pending:
            return True
        transactions, admitted = substitute_admitted(block.transactions, self.admitted)
        try:
            pending = self.chain.reexecute(block.header, transactions, admitted)
        except BlockRejected as exc:
            log.warning("proposal for block %d rejected: %s", block.number, exc)
            return False
        self._keep(pending)
        return True

    def _keep(self, pending: PendingBlock) -> None:
        self.pending[onchain_hash(pending.header)] = pending
        while len(self.pending) > _MAX_PENDING_BLOCKS:
            self.pending.pop(next(iter(self.pending)))

    def commit(self, sealed: BlockHeaderAPI, block: QbftBlock) -> tuple[bytes, set[bytes]]:
        """Write a decided block; re-executes only if its execution was not kept.

        Returns its hash and its transactions' senders (recovered at execution, for the pool).
        """
        pending = self.pending.pop(onchain_hash(sealed), None)
        if pending is None or pending.parent_hash != self.chain.head_hash:
            transactions, admitted = substitute_admitted(block.transactions, self.admitted)
            pending = self.chain.reexecute(sealed, transactions, admitted)
        block_hash = self.chain.commit(pending, sealed)
        self.pending.clear()
        return block_hash, {item.sender for item in pending.executed.transactions}


class QbftEngine:
    """Runs one validator's QBFT over p2p; implements `ConsensusEngine`."""

    def __init__(
        self,
        chain: Chain,
        pool: TxPool,
        events: ChainEvents,
        key: keys.PrivateKey,
        p2p: P2PHost,
        sync: BlockSync,
        chain_lock: asyncio.Lock,
        proposals: VoteProposals,
        metrics: NodeMetrics,
        config: QbftConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain = chain
        self.pool = pool
        self.events = events
        self.p2p = p2p
        self.sync = sync
        self.chain_lock = chain_lock
        self.metrics = metrics
        self.clock = clock
        self.address = key.public_key.to_canonical_address()
        self.port = ChainBlockPort(chain, key, proposals, self._select_from_pool, pool.admitted)
        sync.executed = self.port.pending.get
        # Round timeouts are capped (no hour-long rounds after an outage), so a validator that
        # restarts at round 0 would never catch up with peers climbing rounds at the same pace;
        # the f+1 early round change (as in the QBFT spec) pulls it forward.
        self.machine = QbftStateMachine(
            key,
            self.port,
            config or QbftConfig.from_genesis(chain.genesis, early_round_change=True),
        )
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_round = -1

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
        if not payload:
            return False
        try:
            message = decode_message(payload[0], payload[1:])
        except MessageError as exc:
            log.info("undecodable consensus message from 0x%s: %s", peer.hex(), exc)
            return False
        if message.height > self.chain.head.block_number + 1:
            self.sync.head_hint(peer, message.height)
        self._queue.put_nowait(MessageReceived(message, self.clock()))
        return True

    def _on_block(self, block: CommittedBlock) -> None:
        self._queue.put_nowait(NewChainHead(block.header, self.clock()))

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        unsubscribe = self.p2p.subscribe(MessageKind.CONSENSUS, self._on_consensus_message)
        stop_listening = self.events.on_block(self._on_block)
        self._queue.put_nowait(NewChainHead(self.chain.head, self.clock()))
        try:
            while True:
                event = await self._queue.get()
                async with self.chain_lock:
                    actions = await self._loop.run_in_executor(None, self.machine.handle, event)
                    for action in actions:
                        await self._perform(action)
        finally:
            unsubscribe()
            stop_listening()
            for handle in self._timers.values():
                handle.cancel()

    async def _perform(self, action: object) -> None:
        if isinstance(action, Broadcast):
            self.p2p.gossip(MessageKind.CONSENSUS, bytes([action.code]) + action.data)
        elif isinstance(action, Regossip):
            pass  # the p2p host already relays every new CONSENSUS message it accepted
        elif isinstance(action, StartTimer):
            self._start_timer(action)
        elif isinstance(action, CommitBlock):
            await self._commit(action)
        elif isinstance(action, RequestSync):
            self.sync.want(action.height - 1)
        elif isinstance(action, Log):
            log.log(action.level, action.text)

    def _start_timer(self, timer: StartTimer) -> None:
        assert self._loop is not None
        previous = self._timers.pop(timer.kind, None)
        if previous is not None:
            previous.cancel()
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

    async def _commit(self, action: CommitBlock) -> None:
        assert self._loop is not None
        header = action.block.header
        extra = QbftExtraData.decode(header.extra_data)
        sealed = header.copy(
            extra_data=QbftExtraData(
                extra.vanity, extra.validators, extra.vote, action.round, action.seals
            ).encode()
        )
        started = time.perf_counter()
        try:
            block_hash, senders = await self._loop.run_in_executor(
                None, self.port.commit, sealed, action.block
            )
        except BlockRejected as exc:
            if self.chain.store.canonical_hash(sealed.block_number) == onchain_hash(sealed):
                return  # a peer's announcement of this very block was imported first
            log.error("decided block %d could not be committed: %s", header.block_number, exc)
            return
        self.metrics.block_import.observe(time.perf_counter() - started)
        included = tuple(self.chain.store.block_tx_hashes(block_hash))
        self.pool.on_new_block(
            included,
            self.chain.state_at(self.chain.head),
            senders=senders,
        )
        log.info(
            "committed block %d hash=%s round=%d seals=%d txs=%d",
            sealed.block_number,
            block_hash.hex()[:16],
            action.round,
            len(action.seals),
            len(included),
        )
        self.events.publish_block(CommittedBlock(block_hash, self.chain.head, included))
