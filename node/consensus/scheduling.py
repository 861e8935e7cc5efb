"""Which validators may validate a proposal at low CPU priority, and the thread that does it.

Every validator re-executes each proposal before it sends PREPARE, but a round needs only a
quorum of PREPAREs: with n = 3f + 1 validators, the proposer and 2f others. When validators
share cores (a localnet, the throughput benchmark: four nodes on two cores), the f redundant
re-executions compete with the 2f that decide the block, and the block waits for all of them;
meanwhile, while the next proposer builds its block, a core sits idle. So the f validators
whose next turn to propose is furthest away validate at the lowest OS priority: they use
whatever CPU the deciding validators leave, finish during the next build, and still PREPARE
and COMMIT as usual. Nothing in the protocol changes: a deferring validator validates every
proposal fully before it prepares, and when it is needed for a quorum (a validator is down) it
simply runs on the CPU nobody else wants, or at full speed on a machine of its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from node.consensus.qbft.validators import max_faulty, proposer

log = logging.getLogger(__name__)

LOWEST_PRIORITY = 19
"""The nice value of the deferred-validation thread (Linux: lowest priority, still never
starved: the scheduler gives it a small share even on a busy machine)."""


def deferring_validators(validators: Sequence[bytes], previous_proposer: bytes) -> frozenset[bytes]:
    """The f validators that propose last in the rotation starting at this height.

    Round 0 of the height is proposed by the validator after `previous_proposer`; the ones
    just before it in rotation order propose again only after every other validator has, so
    their state is needed last. None when f = 0 (fewer than four validators): then every
    validator's PREPARE is needed.
    """
    faulty = max_faulty(len(validators))
    return frozenset(proposer(validators, previous_proposer, -k) for k in range(1, faulty + 1))


def _lower_priority() -> None:
    """Thread initializer: lower this thread's scheduling priority (Linux: per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted: run as usual
        log.debug("could not lower the validation thread's priority: %s", exc)


def low_priority_executor() -> ThreadPoolExecutor:
    """A one-thread executor whose thread runs at the lowest OS priority.

    A separate thread because a raised nice value cannot be lowered again without privilege:
    the default executor's threads must keep their normal priority.
    """
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="deferred-validation", initializer=_lower_priority
    )
