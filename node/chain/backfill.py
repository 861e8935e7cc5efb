"""Internal transactions of blocks accepted from a state diff, indexed after the fact.

A validator that accepts a round-0 proposal by checking its proposer's state diff
(`node.chain.diff_import`) never executes it, so it learns neither the block's internal
transactions nor why a failed transaction failed; without more, auditors asking different
validators got different `txlistinternal` and `getstatus` answers. Such a block's commit
batch writes a marker (`schema.internals_pending_key`), and this backfill later replays the
block on its parent's state (`node.chain.tracing.replay`, on a batch never written),
collects what execution would have (`internal_calls.collect`, `error_description`) and
writes the index entries and deletes the marker in one batch.

It never delays block work: it runs on one lowest-OS-priority thread, one block at a time,
and its EVM waits at every frame and jump while the chain builds, re-executes or commits a
block (`Deadline` over `Chain.block_work`, as clients' calls do); it also waits for that
before its write. A kill -9 loses nothing: the marker is durable until the batch that holds
the block's entries removes it, the scan at start finds it again, and the entries' keys are
fixed by block, transaction and call order, so a block replayed twice writes the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from eth.abc import ComputationAPI

from node.chain.chain import Chain
from node.chain.deadline import Deadline, ExecutionTimeout
from node.chain.internal_calls import InternalCall, collect, error_description
from node.chain.notifications import ChainEvents, CommittedBlock
from node.chain.tracing.replay import replay_block
from node.lowpriority import low_priority_executor
from node.storage import schema

log = logging.getLogger(__name__)

REPLAY_TIMEOUT = 600.0
"""Seconds one block's replay may take, waits for block work included; past it (or after a
failure) the block is tried again `RETRY_AFTER` seconds later."""
RETRY_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class _Replayed:
    """A replayed transaction, as the internal-call index reads it (`indexer.TxCalls`)."""

    tx_hash: bytes
    internal_calls: tuple[InternalCall, ...]
    error: str


def pending_blocks(chain: Chain, limit: int | None = None) -> list[tuple[int, bytes]]:
    """(number, block hash) of the blocks whose internal transactions await the backfill,
    oldest first (at most `limit` of them).

    Markers are written with their block, so they lie between `q` + 0 and `q` + the head's
    number; a state-trie node's 32-byte key falls in that range only if its hash's bytes 1-8
    are below the head's number (about 1 in 2^44 at a million blocks). A scan of the whole
    `q` prefix also met one in 256 of every state node: at 1,000,000 accounts, thousands of
    keys read after every block, for a marker or none.
    """
    store = chain.store.store
    stop = schema.internals_pending_key(chain.head.block_number + 1)
    found: list[tuple[int, bytes]] = []
    for key, block_hash in store.iterate_range(schema.internals_pending_key(0), stop):
        if len(key) != schema.INTERNALS_PENDING_KEY_LENGTH:
            continue
        found.append((schema.decode_internals_pending_key(key), block_hash))
        if len(found) == limit:
            break
    return found


def backfill_block(chain: Chain, number: int, block_hash: bytes, deadline: Deadline) -> None:
    """Index block `number`'s internal transactions and drop its marker, in one batch."""
    header = chain.header_by_hash(block_hash)
    if header is None:
        raise LookupError(f"block #{number} 0x{block_hash.hex()} is not stored")
    replayed: dict[bytes, _Replayed] = {}

    def keep(tx_hash: bytes, computation: ComputationAPI) -> None:
        error = error_description(computation) if computation.is_error else ""
        replayed[tx_hash] = _Replayed(tx_hash, collect(computation), error)

    replay_block(chain, header, deadline, lambda index, tx_hash: None, untraced=keep)
    batch = chain.store.new_batch()
    chain.indexer.index_internal_calls(
        batch,
        number,
        header.timestamp,
        [replayed[tx_hash] for tx_hash in chain.store.block_tx_hashes(block_hash)],
    )
    del batch[schema.internals_pending_key(number)]
    deadline.check()  # the write, too, waits for block work to finish
    chain.store.commit(batch)


class InternalCallBackfill:
    """Works through the markers, from the start and after each new block, one at a time."""

    def __init__(self, chain: Chain, events: ChainEvents, timeout: float = REPLAY_TIMEOUT) -> None:
        self.chain = chain
        self.timeout = timeout
        self._wake = asyncio.Event()
        self._executor = low_priority_executor(1, "internal-backfill")
        self._lock = threading.Lock()
        self._running: Deadline | None = None
        self._closed = False
        events.on_block(self._on_block)

    def _on_block(self, block: CommittedBlock) -> None:
        self._wake.set()

    def backfill_next(self) -> bool:
        """Backfill the oldest marked block; False when none is marked. Blocking: for a
        worker thread."""
        found = pending_blocks(self.chain, limit=1)
        if not found:
            return False
        deadline = Deadline(self.timeout, self.chain.block_work)
        with self._lock:
            if self._closed:
                deadline.abort()
            self._running = deadline
        try:
            backfill_block(self.chain, *found[0], deadline)
        finally:
            self._running = None
        return True

    async def run(self) -> None:
        """Backfill until cancelled: what is marked now (left by a previous run too), then
        whatever new blocks mark."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                while await loop.run_in_executor(self._executor, self.backfill_next):
                    pass
            except ExecutionTimeout as exc:
                if self._closed:
                    return
                log.warning("internal-call backfill paused: %s", exc)
                await asyncio.sleep(RETRY_AFTER)
                continue
            except Exception:
                if self._closed:
                    return
                log.exception("internal-call backfill failed; retrying in %gs", RETRY_AFTER)
                await asyncio.sleep(RETRY_AFTER)
                continue
            await self._wake.wait()

    def close(self) -> None:
        """Abort a replay in progress and wait for its thread: the store closes next."""
        with self._lock:
            self._closed = True
            if self._running is not None:
                self._running.abort()
        self._executor.shutdown(wait=True, cancel_futures=True)
