"""Block sync: keep this node's chain level with its peers', verifying every block's seals.

Peers tell each other their head (STATUS) on connect and after every new block. A node that
learns of a higher head asks one peer at a time for a batch of blocks (BLOCK_REQUEST ->
BLOCKS), verifies each block's commit seals against the validators in force at its height,
re-executes it and commits it (`node.chain.importer`). A freshly committed block is also
pushed to every peer as a one-block BLOCKS message, so followers import it without asking.
All chain writes go through one lock shared with the consensus engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import rlp
from eth.abc import BlockAPI
from eth_utils import ValidationError
from rlp.sedes import CountableList, big_endian_int, binary

from node.chain.chain import Chain, PendingBlock
from node.chain.evm.vm import TallyVM
from node.chain.executor import BlockRejected
from node.chain.importer import AdmittedLookup, import_block
from node.chain.notifications import ChainEvents, CommittedBlock
from node.chain.vm import decode_transaction
from node.p2p.host import P2PHost
from node.p2p.messages import MessageKind
from node.p2p.peer import Peer

log = logging.getLogger(__name__)

MAX_BLOCKS_PER_REQUEST = 64
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
BLOCK_CLASS = TallyVM.get_block_class()


class Status(rlp.Serializable):
    fields = (("number", big_endian_int), ("block_hash", binary))


class BlockRequest(rlp.Serializable):
    fields = (("start", big_endian_int), ("count", big_endian_int))


class Blocks(rlp.Serializable):
    fields = (("blocks", CountableList(BLOCK_CLASS)),)


_Message = TypeVar("_Message", bound=rlp.Serializable)


class SyncMessageError(ValueError):
    """A peer's STATUS, BLOCK_REQUEST or BLOCKS payload that does not decode to its shape."""


def decode_sync_message(payload: bytes, sedes: type[_Message]) -> _Message:
    """Decode a sync payload; malformed input of any kind raises `SyncMessageError` only.

    pyrlp raises DecodingError for bad RLP but DeserializationError (not a DecodingError) or
    TypeError for good RLP of the wrong shape, and py-evm's sedes add ValueError and
    ValidationError; a peer's bytes must never reach the p2p handler as an unexpected error.
    """
    try:
        return rlp.decode(payload, sedes=sedes)
    except (rlp.exceptions.RLPException, ValidationError, ValueError, TypeError) as exc:
        raise SyncMessageError(f"undecodable {sedes.__name__}: {exc}") from exc


def block_at(chain: Chain, number: int) -> BlockAPI | None:
    """A committed block as it travels: header and transactions."""
    header = chain.header_by_number(number)
    if header is None:
        return None
    transactions = []
    for tx_hash in chain.store.block_tx_hashes(chain.block_hash(header)):
        record = chain.store.transaction(tx_hash)
        if record is None:
            return None
        transactions.append(decode_transaction(record.raw))
    return BLOCK_CLASS(header, transactions=transactions, uncles=[], withdrawals=[])


@dataclass
class _PeerHead:
    number: int
    block_hash: bytes


class BlockSync:
    """Status exchange, batch download and verified import over a `P2PHost`."""

    def __init__(
        self,
        chain: Chain,
        p2p: P2PHost,
        events: ChainEvents,
        chain_lock: asyncio.Lock,
        after_import: Callable[[CommittedBlock, list[BlockAPI]], None],
        *,
        executed: Callable[[bytes], PendingBlock | None] | None = None,
        admitted: AdmittedLookup | None = None,
    ) -> None:
        """`executed` finds a block this validator already executed while deciding it
        (the consensus engine's), `admitted` a transaction the pool already checked: both
        spare re-doing work on import."""
        self.chain = chain
        self.p2p = p2p
        self.events = events
        self.chain_lock = chain_lock
        self.after_import = after_import
        self._heads: dict[bytes, _PeerHead] = {}
        self._in_flight: tuple[bytes, float] | None = None
        self._wake = asyncio.Event()
        self._lagging: tuple[int, float] | None = None
        self.one_block_grace = float(chain.genesis.request_timeout_seconds)
        """How long a lag of a single block is left to consensus before it is fetched."""
        self.executed = executed
        self.admitted = admitted
        p2p.subscribe(MessageKind.STATUS, self._on_status)
        p2p.subscribe(MessageKind.BLOCK_REQUEST, self._on_request)
        p2p.subscribe(MessageKind.BLOCKS, self._on_blocks)
        p2p.on_peer_connected(self._on_connected)
        p2p.on_peer_disconnected(self._on_disconnected)

    @property
    def highest_known(self) -> int:
        return max((head.number for head in self._heads.values()), default=0)

    def is_syncing(self) -> bool:
        return self.highest_known > self.chain.head.block_number

    def _status_payload(self) -> bytes:
        tip = self.chain.tip  # one value: header and hash of the same block
        return rlp.encode(Status(tip.number, tip.hash))

    def _on_connected(self, peer: Peer) -> None:
        self.p2p.send(peer.address, MessageKind.STATUS, self._status_payload())

    def _on_disconnected(self, peer: Peer) -> None:
        self._heads.pop(peer.address, None)

    def announce(self, number: int) -> None:
        """Push our newly committed block `number` to the peers that are not validators.

        Validators decide every block themselves (and would only decode and drop it);
        members learn of it at once instead of waiting for a STATUS round trip.
        """
        validators = set(self.chain.validator_tally(self.chain.head_hash).validators)
        members = [info.address for info in self.p2p.peers() if info.address not in validators]
        block = block_at(self.chain, number) if members else None
        if block is not None:
            payload = rlp.encode(Blocks([block]))
            for peer in members:
                self.p2p.send(peer, MessageKind.BLOCKS, payload)

    def head_hint(self, peer: bytes, number: int) -> None:
        """A peer's message speaks of a height we lack (e.g. future-height consensus)."""
        current = self._heads.get(peer)
        if current is None or current.number < number - 1:
            self._heads[peer] = _PeerHead(number - 1, b"")
            self._wake.set()

    def want(self, number: int) -> None:
        """Validators are past `number`: fetch up to it from whichever peer has it."""
        if number <= self.chain.head.block_number:
            return
        for peer in [info.address for info in self.p2p.peers()]:
            current = self._heads.get(peer)
            if current is None or current.number < number:
                self._heads[peer] = _PeerHead(number, b"")
        self._wake.set()

    def _on_status(self, peer: bytes, payload: bytes) -> None:
        try:
            status = decode_sync_message(payload, Status)
        except SyncMessageError:
            return
        self._heads[peer] = _PeerHead(status.number, status.block_hash)
        if status.number > self.chain.head.block_number:
            self._wake.set()

    def _on_request(self, peer: bytes, payload: bytes) -> None:
        try:
            request = decode_sync_message(payload, BlockRequest)
        except SyncMessageError:
            return
        blocks: list[BlockAPI] = []
        size = 0
        last = min(
            request.start + min(request.count, MAX_BLOCKS_PER_REQUEST),
            self.chain.head.block_number + 1,
        )
        for number in range(request.start, last):
            block = block_at(self.chain, number)
            if block is None:
                break
            size += sum(len(tx.encode()) for tx in block.transactions) + 600
            if blocks and size > MAX_RESPONSE_BYTES:
                break
            blocks.append(block)
        self.p2p.send(peer, MessageKind.BLOCKS, rlp.encode(Blocks(blocks)))

    async def _on_blocks(self, peer: bytes, payload: bytes) -> None:
        asked = self._in_flight is not None and self._in_flight[0] == peer
        if asked:
            self._in_flight = None
        try:
            blocks = decode_sync_message(payload, Blocks).blocks
        except SyncMessageError as exc:
            log.info("undecodable BLOCKS from 0x%s: %s", peer.hex(), exc)
            return
        if asked and not blocks:
            # It has nothing past our head: `want` only guessed it did. Left at the guess, two
            # lagging validators asked each other for ever (see `_pick`).
            self._heads[peer] = _PeerHead(self.chain.head.block_number, b"")
        if blocks:
            last = blocks[-1].header.block_number
            head = self._heads.get(peer)
            if head is None or head.number < last:
                self._heads[peer] = _PeerHead(last, b"")
        await self.import_blocks(peer, list(blocks))
        self._wake.set()

    async def import_blocks(self, peer: bytes, blocks: list[BlockAPI]) -> int:
        """Import the blocks that extend our head, in order; stop at the first bad one."""
        imported = 0
        for block in blocks:
            number = block.header.block_number
            if number <= self.chain.head.block_number:
                continue
            if number > self.chain.head.block_number + 1:
                break
            async with self.chain_lock:
                if number != self.chain.head.block_number + 1:
                    continue
                started = time.perf_counter()
                try:
                    block_hash = await asyncio.get_running_loop().run_in_executor(
                        None,
                        partial(
                            import_block,
                            self.chain,
                            block.header,
                            list(block.transactions),
                            executed=self.executed,
                            admitted=self.admitted,
                        ),
                    )
                except BlockRejected as exc:
                    log.warning("block %d from 0x%s rejected: %s", number, peer.hex(), exc)
                    self._heads.pop(peer, None)
                    return imported
                elapsed = time.perf_counter() - started
            imported += 1
            committed = CommittedBlock(
                block_hash,
                self.chain.head,
                tuple(self.chain.store.block_tx_hashes(block_hash)),
                local=False,
            )
            log.info(
                "imported block %d hash=%s txs=%d in %.0f ms",
                number,
                block_hash.hex()[:16],
                len(block.transactions),
                elapsed * 1000,
            )
            self.after_import(committed, [block])
        return imported

    async def run(self) -> None:
        """Ask for blocks while any peer is ahead; one request in flight at a time."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._next_check())
            self._wake.clear()
            if (
                self._in_flight is not None
                and time.monotonic() - self._in_flight[1] < REQUEST_TIMEOUT
            ):
                continue
            self._in_flight = None
            ours = self.chain.head.block_number
            ahead = [
                (head.number, peer) for peer, head in self._heads.items() if head.number > ours
            ]
            if not ahead:
                self._lagging = None
                continue
            best, peer = self._pick(ours)
            if best == ours + 1 and self._within_grace(ours):
                continue
            request = BlockRequest(ours + 1, MAX_BLOCKS_PER_REQUEST)
            if self.p2p.send(peer, MessageKind.BLOCK_REQUEST, rlp.encode(request)):
                self._in_flight = (peer, time.monotonic())

    def _pick(self, ours: int) -> tuple[int, bytes]:
        """The peer to ask: one whose head it announced itself (STATUS carries its hash) over
        one `want` or `head_hint` only guessed is ahead, then the highest, ties at random.

        Picking the highest address among equals, as this did, let a guess win for ever: two
        validators left one block behind got each other's guessed heads from `want`, each
        asked the other (by address, the highest), got no blocks, and asked again, while the
        two that had the block ran rounds without them (a 4-validator chain halted 2 minutes
        in a kill -9 loop; with 6 validators and 4 alive every live one is needed, so a node
        stuck behind halts the chain for good).
        """
        ahead = [(peer, head) for peer, head in self._heads.items() if head.number > ours]
        announced = [(peer, head) for peer, head in ahead if head.block_hash] or ahead
        best = max(head.number for _, head in announced)
        peer = random.choice([peer for peer, head in announced if head.number == best])
        return best, peer

    def _within_grace(self, ours: int) -> bool:
        """Whether a one-block lag at head `ours` is still consensus's to close.

        Validators finish a height a few hundred milliseconds apart, and each announces its
        new head at once: without this, the slower ones (above all the validator that
        validates at low priority, `node.consensus.scheduling`) would fetch, decode and
        re-import every block they are about to commit themselves, and the faster ones would
        read and encode it for them, on every block. A node further behind, or one block
        behind for longer than a round, fetches as before.
        """
        now = time.monotonic()
        if self._lagging is None or self._lagging[0] != ours:
            self._lagging = (ours, now)
        return now - self._lagging[1] < self.one_block_grace

    def _next_check(self) -> float:
        if self._lagging is None:
            return 2.0
        remaining = self._lagging[1] + self.one_block_grace - time.monotonic()
        return min(2.0, max(0.05, remaining))

    def broadcast_status(self) -> None:
        self.p2p.broadcast(MessageKind.STATUS, self._status_payload())
