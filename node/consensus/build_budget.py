"""How long a proposer may spend executing transactions: less when heights take too long.

The budget caps a block's size by the proposer's execution time; the validators' checks, the
message rounds and the commit follow, and all of it must fit in the round timeout or the
height goes to a round change (a round timeout lost, then a block that every validator
re-executes). How long that takes is not fixed: a machine the validators share with other
work runs them slower. So every validator watches how long each height takes from the start
of its round 0 to its commit, and a proposer shrinks its budget while heights come close to
the timeout (or change round) and grows it back, up to the configured share, while they are
quick. The budget only sizes this node's own proposals; nothing about it is agreed on.
"""

from __future__ import annotations

SLOW_SHARE = 0.8
"""A height decided later than this share of the round timeout shrinks the budget."""
FAST_SHARE = 0.6
"""A height decided sooner than this share of the round timeout lets the budget grow."""
SHRINK = 0.75
GROW = 1.15
MIN_SHARE = 0.15
"""The smallest budget, as a share of the block period."""


class BuildBudget:
    """The execution budget (seconds) for this node's next proposal."""

    def __init__(self, block_period: float, round_timeout: float, share: float) -> None:
        self.maximum = share * block_period
        self.minimum = min(self.maximum, MIN_SHARE * block_period)
        self.seconds = self.maximum
        self._slow = SLOW_SHARE * round_timeout
        self._fast = FAST_SHARE * round_timeout

    def observe(self, decided_in: float, round_number: int) -> None:
        """A height was committed `decided_in` seconds after its round 0 started here."""
        if round_number > 0 or decided_in > self._slow:
            self.seconds = max(self.minimum, self.seconds * SHRINK)
        elif decided_in < self._fast:
            self.seconds = min(self.maximum, self.seconds * GROW)
