"""The one QBFT quorum: how many validators' messages or seals make a decision."""

from __future__ import annotations

import math


def quorum(validator_count: int) -> int:
    """ceil(2n/3) (Besu `BftHelpers.calculateRequiredValidatorQuorum`; the spec's (2n-1)/3+1).

    Used for prepares, commits and round changes in the state machine, for the commit seals a
    synced block must carry, for the seal count the REST API reports, and for the live
    validators a vote must leave (`node.consensus.voting.vote_hazard`).
    """
    return math.ceil(2 * validator_count / 3)
