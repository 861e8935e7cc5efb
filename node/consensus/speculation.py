"""A proposer's next block, executed while it waits for its turn.

Between a block's commit and the next block timer a validator has nothing to do: 0.28-0.41 s
(median) on four validators at an offered 260 ERC-20 tx/s on 2 cores, when the proposer then
spends 0.1-0.3 s executing its block before the proposal can go out. So the next height's
round-0 proposer opens its block on the new head as soon as it is committed, with the
timestamp its timer will stamp, and applies what its pool holds, again as more arrives, until
just before the timer. When the timer fires it applies only what arrived since and finishes
the block: the proposal goes out that much sooner, and every transaction in it is final that
much sooner.

Nothing agreed on depends on it. The block is one a proposer building at the timer could
have built from the same pool: the same parent, timestamp and coinbase, transactions in the
pool's order for each sender; extraData (round, vote) is read by no opcode and is set when
the block is finished. If the head moves or the timer stamps another timestamp, the open block
is dropped and the proposer builds as before. Execution time spent early counts against the
build budget (`node.consensus.build_budget`) like any other, so blocks are no larger.

The dev node's single validator (`node.consensus.solo`) does the same while its next block
comes due, without a budget: it executes while it takes transactions in, where it used to
take them in and then execute in one burst at the block's time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from node.chain.chain import Chain, OpenBlock, PendingBlock
from node.txpool.transaction import PooledTransaction

SPECULATION_MARGIN_SECONDS = 0.02
"""Early execution stops this long before the block timer, so the timer is not kept waiting."""
SPECULATION_POLL_SECONDS = 0.05
"""How often the open block takes in what the pool received meanwhile."""


class Speculation:
    """The block this node opened early for its next proposal, and what went into it."""

    def __init__(self, block: OpenBlock) -> None:
        self.block = block
        self.spent = 0.0
        """Seconds spent executing its transactions so far (all of it counts against the
        build budget)."""
        self._settled: set[bytes] = set()
        """Hashes of the pool transactions it included or skipped: not offered again."""

    def matches(self, parent_hash: bytes, timestamp: int) -> bool:
        """Whether this is the block a proposal on `parent_hash` at `timestamp` would build."""
        return self.block.parent_hash == parent_hash and self.block.timestamp == timestamp

    def apply(self, selection: Sequence[PooledTransaction], budget: float, until: float) -> None:
        """Execute what `selection` holds that was not offered yet, within the `budget`
        (seconds, for the whole block) and before `until` (`time.monotonic()`)."""
        fresh = [item.admitted for item in selection if item.hash not in self._settled]
        if not fresh:
            return
        started = time.monotonic()
        self.block.apply(fresh, deadline=min(until, started + budget - self.spent))
        self.spent += time.monotonic() - started
        left = {id(item) for item in self.block.deferred}
        self._settled.update(item.hash for item in fresh if id(item) not in left)


def speculation_on_head(
    chain: Chain,
    speculation: Speculation | None,
    *,
    timestamp: int,
    coinbase: bytes,
    extra_data: Callable[[], bytes],
) -> Speculation:
    """`speculation` if it is the block on the head at `timestamp`, else one opened there
    (`extra_data` is asked for only then; the block's final one is set when it is finished)."""
    if speculation is not None and speculation.matches(chain.head_hash, timestamp):
        return speculation
    return Speculation(
        chain.open_block(timestamp=timestamp, coinbase=coinbase, extra_data=extra_data())
    )


def finish_or_build(
    chain: Chain,
    speculation: Speculation | None,
    selection: Sequence[PooledTransaction],
    *,
    timestamp: int,
    coinbase: bytes,
    extra_data: bytes,
    budget: float,
) -> tuple[PendingBlock, int]:
    """The block due at `timestamp`: the one opened early, finished with what `selection`
    adds, or, if there is none on the head at that timestamp, built from `selection` now,
    within `budget` seconds of execution either way. Also how many of its transactions were
    executed ahead."""
    if speculation is None or not speculation.matches(chain.head_hash, timestamp):
        pending = chain.build(
            [item.admitted for item in selection],
            timestamp=timestamp,
            coinbase=coinbase,
            extra_data=extra_data,
            deadline=time.monotonic() + budget,
        )
        return pending, 0
    ahead = speculation.block.applied
    speculation.apply(selection, budget, until=math.inf)
    return speculation.block.finish(extra_data), ahead
