"""Threads at the lowest OS priority, for work that must never slow block production.

Used by consensus (a deferring validator's fallback re-execution, `node.consensus.scheduling`),
by the chain (`node.chain.backfill`) and by clients' calls (`node.query.callpool`); it lives at
the top so that none of them imports another for it.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

LOWEST_PRIORITY = 19
"""The nice value of these threads (Linux: lowest priority, still never starved: the scheduler
gives them a small share even on a busy machine)."""


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
