"""How long a client call may run: a deadline checked as it executes, and the error past it.

Block execution never runs under one (a block's outcome must not depend on how fast a node
is); `eth_call`, `eth_estimateGas`, traces and the internal-call backfill do.
"""

from __future__ import annotations

import time

from node.chain.priority import BlockWork


class ExecutionTimeout(Exception):
    """A client call ran past its deadline (or the node is stopping).

    Deliberately not a py-evm `VMError`: a frame catches those and carries on as a failed
    call, whereas this must unwind the whole execution at once.
    """


class Deadline:
    """When a bounded computation must stop, as a `time.monotonic()` value.

    Each check first waits, without the GIL, while `block_work` is busy (block building
    comes first: `node.chain.priority`). `abort` moves the deadline to the past, so a node
    that is stopping ends the calls still running rather than waiting out their timeouts.
    """

    __slots__ = ("at", "block_work", "seconds")

    def __init__(self, seconds: float, block_work: BlockWork | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.block_work = block_work

    def abort(self) -> None:
        self.at = float("-inf")

    def check(self) -> None:
        work = self.block_work
        if work is not None and not work.idle.is_set():
            work.idle.wait(self.at - time.monotonic())
        if time.monotonic() > self.at:
            if self.at == float("-inf"):
                raise ExecutionTimeout("execution aborted (the node is stopping)")
            raise ExecutionTimeout(f"execution aborted (timeout = {self.seconds:g}s)")
