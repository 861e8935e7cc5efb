"""The arithmetic every QBFT validator must agree on: fault bound, proposers, round timeouts.

The quorum itself is header format (`node.qbftheader.quorum`): a synced block's seals are
counted with it too.

Each function here is a deterministic function of shared data (the validator list, the
previous block's proposer, the round number, the chain's configuration): if two honest nodes
disagreed on any of them they would wait for different proposers or time out at different
moments, which QBFT's liveness argument does not survive.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

DEFAULT_MAX_ROUND_TIMEOUT_SECONDS = 30.0
_MAX_EXPONENT = 62  # keeps 2**round an ordinary int whatever round a peer names


def max_faulty(validator_count: int) -> int:
    """f = floor((n-1)/3): the Byzantine validators the network tolerates."""
    return (validator_count - 1) // 3


def proposer(validators: Sequence[bytes], previous_proposer: bytes, round_number: int) -> bytes:
    """The proposer for `round_number` of a height (Besu `BftProposerSelector`, changeEachBlock).

    `validators` are the sorted validators in force at the height and `previous_proposer` the
    coinbase of its parent block. Rotation starts just after the previous proposer; when that
    proposer is no longer a validator (dropped by vote, or the genesis zero coinbase) it starts
    at the first validator above it, wrapping to the first.
    """
    if not validators:
        raise ValueError("no validators")
    if previous_proposer in validators:
        start = validators.index(previous_proposer) + 1
    else:
        start = bisect.bisect_right(list(validators), previous_proposer) % len(validators)
    return validators[(start + round_number) % len(validators)]


def round_timeout(
    request_timeout: float,
    round_number: int,
    max_timeout: float | None = DEFAULT_MAX_ROUND_TIMEOUT_SECONDS,
) -> float:
    """Seconds round `round_number` lasts: request_timeout * 2**round, capped at `max_timeout`.

    Besu doubles without bound, so after a long outage a round can last hours (besu#7642) and
    the only remedy is a coordinated restart. Capping keeps rounds bounded; the timeout stays a
    pure function of the round number, the same on every node, so validators that entered a
    round together leave it together and their round changes for the next round meet (this is
    what lets a healed partition recover: every side keeps counting rounds at the same pace).

    GoQuorum's cap (quorum#1624) was followed by round-change storms (quorum#1664): with short
    capped rounds every validator emits a round change, possibly carrying a whole block, every
    few seconds for as long as no quorum forms. Two choices here keep that bounded: the default
    cap (30 s) is well above the request timeout, so the storm is at most one round change per
    validator per 30 s; and the state machine ignores messages for rounds far ahead of its own
    (besu#11102), so a faulty peer cannot fill memory with far-future rounds.

    What a cap gives up is the catch-up property of unbounded doubling: a validator restarted
    at round 0 while the others sit at round R climbs at the same pace as they advance, so it
    may never meet them. The f+1 early round change (`QbftConfig.early_round_change`) is what
    pulls such a validator forward; enable it whenever the cap is.

    `max_timeout=None` gives Besu's uncapped behaviour.
    """
    timeout = request_timeout * 2 ** min(max(round_number, 0), _MAX_EXPONENT)
    if max_timeout is not None:
        timeout = min(timeout, max(max_timeout, request_timeout))
    return float(timeout)
