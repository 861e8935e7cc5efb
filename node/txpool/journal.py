"""The pool's journal: every admitted transaction is on disk before its hash is answered.

The pool lives in memory; without this a kill -9 lost every transaction a client had been given
a hash for, and only clients that resubmitted got theirs mined. As geth keeps
`transactions.rlp`, Tally keeps `<datadir>/txpool.journal`: an append-only file of the raw
transactions the pool admitted (new ones and replacements, from clients and from gossip alike:
a node restarted with its peers' transactions can propose or re-gossip them), replayed through
normal admission at start, so whatever was mined or became invalid meanwhile drops out.

Why a file and not LevelDB: the cost of durability is one fsync either way (a synced LevelDB
write fsyncs its log), but the chain store's writer is shared with block commits, so a synced
journal write would queue behind a block being written (tens of milliseconds for a large
block) and every waiting client with it; and LevelDB keys would have to be deleted per mined
transaction, where a file is simply rewritten. The journal's own fsync touches nothing else.

Record format: a `struct` header of two big-endian uint32 (payload length, CRC-32 of the
payload), then the payload, which is the transaction's raw bytes exactly as admitted (its own
canonical RLP or EIP-2718 encoding; nothing is re-encoded). A kill -9 or power loss can leave a
record cut short or, on some file systems, a tail of zeros: reading stops at the first record
whose header or payload is incomplete or whose checksum fails, and the bytes from there on are
dropped (logged). No client was answered for them: answers wait for the fsync.

Group commit: `append` (a pool listener) only buffers the record and wakes the flusher task,
which writes and fdatasyncs everything buffered in a worker thread, then the next batch. A
JSON-RPC batch is admitted in one event-loop turn and so costs one fsync; concurrent clients
share the fsync in progress or the next one. `JournalGate` holds each HTTP/WebSocket response
until the journal is durable up to the last record its own request appended, so no hash
leaves the node before its transaction is on disk, and requests that admitted nothing are
never held. Neither the JSON-RPC handlers nor the pool know about any of it.

Compaction: at start, after the replay, the file is rewritten with only what the pool then
holds; while running, a flush rewrites it the same way instead of appending once the file
holds more than `COMPACT_FLOOR` records plus twice what the pool holds (mined transactions are
never deleted from the file one by one). A rewrite goes to a temporary file, is fsynced and
renamed over the journal, so a kill -9 mid-compaction leaves the old journal whole.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import struct
import zlib
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.txpool.admission import AccountStateReader
from node.txpool.errors import TxPoolError
from node.txpool.pool import TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

JOURNAL_FILE = "txpool.journal"
"""The journal's name inside the datadir."""

RECORD_HEADER = struct.Struct(">II")
"""Payload length and CRC-32 of the payload, before every record."""

MAX_RECORD = 1 << 20
"""No admissible transaction is this large (the pool's limit is 128 KiB): a header claiming
more is damage, not a record."""

COMPACT_FLOOR = 2048
"""Records the file may hold beyond twice the pool's size before a flush rewrites it."""

RETRY_DELAY = 1.0
"""Seconds between attempts when writing the journal fails (a full disk): answers wait."""


def encode_record(raw: bytes) -> bytes:
    """One journal record: header, then the raw transaction."""
    return RECORD_HEADER.pack(len(raw), zlib.crc32(raw)) + raw


def decode_records(data: bytes) -> tuple[list[bytes], int]:
    """The payloads of the whole records at the start of `data`, and how many bytes they span.

    Everything after the first incomplete or damaged record is left out: see the module
    docstring.
    """
    payloads: list[bytes] = []
    position = 0
    header_size = RECORD_HEADER.size
    while position + header_size <= len(data):
        length, checksum = RECORD_HEADER.unpack_from(data, position)
        start = position + header_size
        end = start + length
        if length > MAX_RECORD or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != checksum:
            break
        payloads.append(payload)
        position = end
    return payloads, position


@dataclass
class Restored:
    """What `TxJournal.load` found: records read, admitted again, refused (by reason), and
    the bytes of a torn or damaged tail that were dropped."""

    records: int = 0
    admitted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    dropped_bytes: int = 0


class _Ticket:
    """The journal position a request must see durable before its response may leave."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq = 0


_ticket: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar(
    "txpool_journal_ticket", default=None
)


class TxJournal:
    """The journal of one pool: load (replay and compact) once, then append as it admits.

    Runs on the node's event loop; only the file writes run in its own worker thread, which
    receives bytes and touches no other state.
    """

    def __init__(self, path: Path, pool: TxPool) -> None:
        self.path = path
        self.pool = pool
        self._temporary = path.with_name(path.name + ".tmp")
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._appended = 0
        """Records appended since start (the last one's sequence number)."""
        self._durable = 0
        """Every record up to this sequence number is on disk (or left the pool)."""
        self._records = 0
        """Records in the file, for the compaction threshold."""
        self._rewrite_due = False
        self.flushes = 0
        """Batches written while running (one fdatasync each; a compaction counts as one):
        with group commit, far fewer than the transactions admitted."""
        self._progress = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txjournal")

    # --- start ----------------------------------------------------------------------------------

    def load(self, state: AccountStateReader) -> Restored:
        """Replay the journal into the pool, rewrite it with what the pool then holds, and
        start appending what the pool admits from now on.

        Call once, before the node serves anything. Each record goes through `TxPool.add`
        (`restoring`: the nonce-gap limit is not applied, as when it was first admitted by a
        node that was behind); mined, replaced or now-invalid transactions are refused there
        and counted by reason.
        """
        restored = Restored()
        self._temporary.unlink(missing_ok=True)  # an interrupted compaction
        data = self.path.read_bytes() if self.path.exists() else b""
        payloads, end = decode_records(data)
        restored.records = len(payloads)
        restored.dropped_bytes = len(data) - end
        for raw in payloads:
            try:
                self.pool.add(raw, state, restoring=True)
            except TxPoolError as exc:
                restored.refused[type(exc).__name__] += 1
            else:
                restored.admitted += 1
        if restored.dropped_bytes:
            log.warning(
                "txpool journal: dropped %d bytes of a torn or damaged tail after %d records",
                restored.dropped_bytes,
                restored.records,
            )
        if restored.records:
            log.info(
                "txpool journal: %d transactions restored of %d recorded; refused: %s",
                restored.admitted,
                restored.records,
                dict(restored.refused) or "none",
            )
        self._records = self._rewrite([ptx.raw for ptx in self.pool.transactions()])
        self.pool.on_added.append(self.append)
        return restored

    # --- appending ------------------------------------------------------------------------------

    @property
    def appended(self) -> int:
        """The sequence number of the last record appended (records count from 1)."""
        return self._appended

    @property
    def durable(self) -> int:
        """The sequence number up to which appended records are on disk."""
        return self._durable

    def append(self, pooled: PooledTransaction) -> None:
        """Record a transaction the pool took in; the flusher writes it in the next batch.

        The caller's request (if any, see `JournalGate`) is marked as waiting for it.
        """
        self._buffer.append(encode_record(pooled.raw))
        self._appended += 1
        ticket = _ticket.get()
        if ticket is not None:
            ticket.seq = self._appended
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush(), name="txpool-journal"
            )

    async def wait_durable(self, seq: int) -> None:
        """Return once every record up to `seq` is on disk."""
        while self._durable < seq:
            progress = self._progress
            await progress.wait()

    async def close(self) -> None:
        """Stop recording, write what is buffered and close the file (a clean stop)."""
        self.pool.on_added.remove(self.append)
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._executor.shutdown(wait=True)

    async def _flush(self) -> None:
        """Write batches until none is left: append them, or rewrite the file when it holds
        too much that the pool no longer does (or after a failed write)."""
        loop = asyncio.get_running_loop()
        try:
            while self._buffer or self._rewrite_due:
                upto = self._appended
                try:
                    if self._rewrite_due or self._records + len(self._buffer) > (
                        COMPACT_FLOOR + 2 * len(self.pool)
                    ):
                        # The pool holds every buffered transaction that is still pending
                        # or queued; the others were mined (or evicted) meanwhile.
                        self._buffer.clear()
                        raws = [ptx.raw for ptx in self.pool.transactions()]
                        self._records = await loop.run_in_executor(
                            self._executor, self._rewrite, raws
                        )
                        self._rewrite_due = False
                    else:
                        batch, self._buffer = self._buffer, []
                        await loop.run_in_executor(self._executor, self._write, batch)
                        self._records += len(batch)
                except Exception:
                    # What was taken from the buffer is in the pool still: a rewrite from the
                    # pool puts it on disk once writing works again. Answers wait meanwhile.
                    log.exception("txpool journal: write failed; retrying")
                    self._rewrite_due = True
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                self._durable = upto
                self.flushes += 1
                progress, self._progress = self._progress, asyncio.Event()
                progress.set()
        finally:
            self._flusher = None

    # --- file operations (worker thread) --------------------------------------------------------

    def _write(self, batch: list[bytes]) -> None:
        """Append records and fdatasync: one disk flush for the whole batch."""
        assert self._fd is not None
        _write_all(self._fd, b"".join(batch))
        os.fdatasync(self._fd)

    def _rewrite(self, raws: Iterable[bytes]) -> int:
        """Replace the file with records of `raws`, atomically, and append to it from now on.
        Returns how many records it holds."""
        records = [encode_record(raw) for raw in raws]
        fd = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, b"".join(records))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        return len(records)


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is written (a regular file may take fewer at a time)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JournalGate:
    """ASGI middleware: a response leaves only once what its request admitted is on disk.

    Each HTTP request or WebSocket connection gets a ticket (a context variable, so it follows
    the request into the tasks it starts); `TxJournal.append` writes the journal position into
    the ticket of the request that admitted the transaction. Every message sent back first
    waits until the journal is durable up to that position: for a request that admitted
    nothing, not at all.
    """

    def __init__(self, app: ASGIApp, journal: TxJournal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ticket = _Ticket()
        journal = self.journal

        async def send_when_durable(message: Message) -> None:
            if ticket.seq > journal.durable:
                await journal.wait_durable(ticket.seq)
            await send(message)

        token = _ticket.set(ticket)
        try:
            await self.app(scope, receive, send_when_durable)
        finally:
            _ticket.reset(token)
