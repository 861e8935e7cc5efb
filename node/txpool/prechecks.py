"""Stateless admission of raw transactions in worker processes, ahead of the pool.

A node's event loop and its block builder share one interpreter lock, so whatever the loop
spends on a transaction's way in is time the EVM does not run. Most of that way in is
stateless and needs no pool: decoding, the field and fee checks, and sender recovery, whose
signing-message encoding is pure Python (coincurve releases the lock only for the curve
arithmetic itself). `decode_checked` does all of it; here it runs in other processes, over
chunks of a JSON-RPC batch, while the loop admits the batch's earlier transactions.

What comes back is `decode_checked`'s own `PooledTransaction`, sender recovered and cached in
its py-evm object (unpickling one costs about a tenth of decoding and recovering it). The pool
still admits in arrival order on the loop (`TxPool.add(..., checked=...)`), and only uses a
checked transaction made under the rules it holds then. A transaction a worker refused comes
back as None and is checked again on the loop, so its refusal is raised exactly as before;
so is every transaction of a chunk whose worker failed. Workers are spawned (not forked from
a threaded node) when first needed, and until they are up transactions are checked on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from node.txpool.admission import AdmissionRules, decode_checked
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)

DEFAULT_WORKERS = min(4, (os.cpu_count() or 1) - 1)
"""One core is the node's own (its loop and block builder share one interpreter lock); on a
single core a worker would only take turns with it, so there are none."""
CHUNK = 32
"""Transactions per task: small enough that the loop starts admitting a batch after a few
milliseconds, large enough that pickling and the pipe cost little per transaction."""


@dataclass(frozen=True, slots=True)
class Checked:
    """`decode_checked(ptx.raw, rules)`'s answer, computed in a worker; `seq` is still 0."""

    ptx: PooledTransaction
    rules: AdmissionRules


class Precheck:
    """One transaction's place in a chunk sent to a worker."""

    __slots__ = ("_chunk", "_index", "_rules")

    def __init__(
        self,
        chunk: asyncio.Future[list[PooledTransaction | None]],
        index: int,
        rules: AdmissionRules,
    ) -> None:
        self._chunk = chunk
        self._index = index
        self._rules = rules

    async def result(self) -> Checked | None:
        """The worker's answer; None when it refused the transaction or failed (the pool
        then checks it on the loop, which raises the refusal exactly as without workers)."""
        try:
            ptx = (await asyncio.shield(self._chunk))[self._index]
        except asyncio.CancelledError:
            if not self._chunk.cancelled():
                raise  # the awaiting task is cancelled, not the chunk
            return None  # the workers were closed before it ran
        except Exception:  # logged once for the chunk (`_log_failure`)
            return None
        return None if ptx is None else Checked(ptx, self._rules)

    def cancel(self) -> None:
        """Drop the answer (a batch ended without admitting this transaction)."""
        self._chunk.cancel()


class Prechecks:
    """A small pool of worker processes running `decode_checked`.

    `workers` 0 makes `start` a no-op (everything is checked on the loop, as before), and so
    does `close`, for good.
    """

    def __init__(self, workers: int = DEFAULT_WORKERS, chunk: int = CHUNK) -> None:
        self.workers = workers
        self.chunk = chunk
        self._executor: ProcessPoolExecutor | None = None
        self._ready: list[Future[None]] = []
        self._closed = False

    @property
    def ready(self) -> bool:
        """Whether every worker has started and answered once."""
        return bool(self._ready) and all(f.done() and f.exception() is None for f in self._ready)

    def start(self) -> None:
        """Spawn the workers in the background (each imports py-evm: about a second)."""
        if self.workers <= 0 or self._closed or self._executor is not None:
            return
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
        )
        self._ready = [self._executor.submit(_warm_up) for _ in range(self.workers)]
        for future in self._ready:
            future.add_done_callback(self._on_warm)

    def _on_warm(self, future: Future[None]) -> None:
        """Say once when the workers are up (or that they could not start)."""
        if future.exception() is not None:
            log.warning("transaction pre-check workers did not start: %r", future.exception())
        elif self.ready:
            log.info("transaction pre-check workers up: %d", self.workers)

    def check(self, raws: Sequence[bytes], rules: AdmissionRules) -> list[Precheck] | None:
        """Start checking `raws` under `rules`, one `Precheck` each, in order; None when the
        workers are not (yet) there, so the caller checks on the loop."""
        if not self.ready:
            self.start()
            return None
        executor = self._executor
        assert executor is not None
        prechecks: list[Precheck] = []
        try:
            for start in range(0, len(raws), self.chunk):
                part = list(raws[start : start + self.chunk])
                task = executor.submit(_check_chunk, part, rules)
                task.add_done_callback(_log_failure)
                chunk = asyncio.wrap_future(task)
                prechecks += (Precheck(chunk, i, rules) for i in range(len(part)))
        except RuntimeError:  # a broken pool (a worker died): start afresh, check on the loop
            log.warning("transaction pre-check workers lost; starting new ones", exc_info=True)
            for precheck in prechecks:
                precheck.cancel()
            self._shut_down()
            self.start()
            return None
        return prechecks

    def close(self) -> None:
        """Stop the workers for good, without waiting for queued chunks (their callers check
        on the loop)."""
        self._closed = True
        self._shut_down()

    def _shut_down(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            self._ready = []


def _log_failure(task: Future[list[PooledTransaction | None]]) -> None:
    """Say why a chunk came back without answers (its transactions are checked on the loop)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning(
            "transaction pre-check worker failed: %r; checking on the loop", task.exception()
        )


def _check_chunk(raws: list[bytes], rules: AdmissionRules) -> list[PooledTransaction | None]:
    """In a worker: each transaction checked, or None if it is refused (for any reason).

    Each is also encoded once: the block builder encodes every transaction (transactions
    root, stored record), and py-evm caches the encoding in the object, which carries it back.
    A typed transaction's decoding leaves that cache empty (~9 us to fill, under the lock)."""
    checked: list[PooledTransaction | None] = []
    for raw in raws:
        try:
            ptx = decode_checked(raw, rules)
            ptx.tx.encode()
        except Exception:
            checked.append(None)
        else:
            checked.append(ptx)
    return checked


def _warm_up() -> None:
    """In a worker: nothing; answering proves the worker has started and imported py-evm."""


def _exit_with_parent() -> None:
    """In a worker: exit when the node process does, even by kill -9 (a worker blocked on the
    task queue would otherwise outlive it)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
