"""Where clients' EVM execution runs: a few threads of its own, bounded in number, queue and time.

`eth_call` and `eth_estimateGas` used to run on the event loop that also runs consensus, so one
call over an endless loop held the whole node (issue 12: 216 s for one estimateGas; two such
calls to two validators stopped finality). Now each runs on one of `workers` threads, with:

- a deadline (geth's `--rpc.evmtimeout`, 5 s) the interpreter checks at every frame and jump
  (`node.chain.evm.interpreter.BoundedComputation`), raised as `CallAborted` (JSON-RPC answers
  it as geth does: -32000 "execution aborted (timeout = 5s)"). It starts when a thread takes
  the call, and covers a whole `eth_estimateGas` search;
- a gas cap (geth's `--rpc.gascap`, 50,000,000) handed to the executor with the deadline;
- a bounded wait: a call that finds every thread busy waits at most `queue_wait` seconds,
  behind at most `max_waiting` others, then is refused with `CallsBusy` (JSON-RPC's -32005
  "too many concurrent calls", REST's 503), rather than calls piling up without bound.

Why threads and not processes: LevelDB admits one process per database, and a call must read
the very state the node commits. The EVM holds the GIL while it runs, so threads give calls
no parallelism, only isolation. While the chain builds, re-executes or commits a block the
calls wait (`node.chain.priority`: without that, two endless calls made block building ten
times slower). The event loop gets the GIL back within a switch interval (5 ms) whenever it
wakes: four endless calls raised the median `eth_blockNumber` round trip from 4 to 17 ms,
and a shorter `sys.setswitchinterval` measured no better, so it is left alone. The threads
also run at the lowest OS priority (`node.lowpriority`, as deferred block validation does,
`node.consensus.scheduling`), so where nodes share cores, calls get what consensus leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from node.chain.calls import CallLimits
from node.chain.deadline import Deadline, ExecutionTimeout
from node.chain.priority import BlockWork
from node.lowpriority import low_priority_executor

_T = TypeVar("_T")


class CallsBusy(Exception):
    """Every thread stayed busy for the whole wait, or too many calls were already waiting."""


class CallAborted(Exception):
    """The call ran past its deadline, or the node is stopping."""


DEFAULT_EVM_TIMEOUT = 5.0
DEFAULT_GAS_CAP = 50_000_000


class CallPool:
    """Runs `work(limits)` for client calls under the bounds described above."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_EVM_TIMEOUT,
        gas_cap: int = DEFAULT_GAS_CAP,
        workers: int = 2,
        max_waiting: int = 64,
        queue_wait: float = 2.0,
        block_work: BlockWork | None = None,
    ) -> None:
        self.timeout = timeout
        self.gas_cap = gas_cap
        self.max_waiting = max_waiting
        self.queue_wait = queue_wait
        self.block_work = block_work
        self._free = asyncio.Semaphore(workers)
        self._waiting = 0
        self._running: set[Deadline] = set()
        self._closed = False
        self._executor = low_priority_executor(workers, "rpc-call")

    async def run(self, work: Callable[[CallLimits], _T], timeout: float | None = None) -> _T:
        """`work`'s result, once a thread is free; `CallsBusy` when none frees up in time,
        `CallAborted` ("execution aborted") when it runs past the timeout (`timeout`, else the
        pool's: a trace brings its own, geth's `timeout` option)."""
        if self._waiting >= self.max_waiting:
            raise CallsBusy(f"too many concurrent calls (max {self.max_waiting} waiting)")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._free.acquire(), self.queue_wait)
        except TimeoutError:
            raise CallsBusy(
                f"too many concurrent calls (none finished within {self.queue_wait:g}s)"
            ) from None
        finally:
            self._waiting -= 1
        if self._closed:
            self._free.release()
            raise CallAborted("the node is stopping")
        loop = asyncio.get_running_loop()
        future = self._executor.submit(self._execute, work, timeout or self.timeout)
        # The thread is freed when the work ends, not when this coroutine does: a client
        # that goes away must not leave a call running outside the count.
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._free.release))
        try:
            return await asyncio.wrap_future(future)
        except ExecutionTimeout as exc:
            raise CallAborted(str(exc)) from None

    def _execute(self, work: Callable[[CallLimits], _T], timeout: float) -> _T:
        deadline = Deadline(timeout, self.block_work)
        self._running.add(deadline)
        if self._closed:  # taken up by this thread as `close` ran
            deadline.abort()
        try:
            return work(CallLimits(self.gas_cap, deadline))
        finally:
            self._running.discard(deadline)

    def close(self) -> None:
        """Refuse new calls, abort those running and wait for their threads: the listeners
        wait for the calls' requests to finish, and the store must not close under a call."""
        self._closed = True
        for deadline in list(self._running):
            deadline.abort()
        self._executor.shutdown(wait=True, cancel_futures=True)
