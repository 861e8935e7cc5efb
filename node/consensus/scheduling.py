"""Which validators need not re-execute a proposal, and the thread they fall back on.

Every validator must validate a proposal before it prepares, but a round needs only a quorum
of PREPAREs: with n = 3f + 1 validators, the proposer and 2f others. QBFT's validity argument
is that every quorum holds an honest validator that checked the block, and with at most f
faulty validators that still holds if f honest ones check less. So the f validators whose
next turn to propose is furthest away (the last in the rotation from this height) check a
round-0 proposal against the state diff its proposer sends them (`node.chain.state_diff`):
a fraction of re-executing it, and exact about the resulting state. A quorum of PREPAREs
then still contains at least one honest validator that re-executed the block: the f that
checked the diff, even with f faulty ones beside them, are 2f, one short of a quorum.

When validators share cores (a localnet, the throughput benchmark: four nodes on two cores)
that removes one of every four executions of each block. If no diff arrives, such a
validator re-executes at the lowest OS priority instead: its PREPARE is not needed while
everyone is up, so it uses the CPU the others leave, and when it is needed (a validator is
down) the CPU nobody else wants, or a machine of its own, runs it at full speed.
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
"""The nice value of the fallback validation thread (Linux: lowest priority, still never
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


def low_priority_executor(
    workers: int = 1, thread_name_prefix: str = "deferred-validation"
) -> ThreadPoolExecutor:
    """An executor whose threads run at the lowest OS priority (also used for clients' calls,
    `node.query.callpool`).

    Threads of their own because a raised nice value cannot be lowered again without
    privilege: the default executor's threads must keep their normal priority.
    """
    return ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=thread_name_prefix, initializer=_lower_priority
    )
