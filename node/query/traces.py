"""Replays under a tracer on the call pool, shared by `debug_trace*`/`trace_*` and REST's
`/transactions/{hash}/calls`: geth's trace timeout and wording, and one transaction's call tree.

A replay that runs out of time raises `CallAborted("execution timeout")` (geth's words for a
trace, where a plain call says "execution aborted"); one whose output outgrows its bound
raises `TraceTooLarge`. Each edge answers both in its own protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from eth.abc import BlockHeaderAPI

from node.chain.calls import CallLimits
from node.chain.chain import Chain
from node.chain.deadline import ExecutionTimeout
from node.chain.tracing.call_tracer import CallTracer
from node.chain.tracing.replay import replay_block
from node.query.callpool import CallPool

_T = TypeVar("_T")

DEFAULT_TRACE_TIMEOUT = 5.0
"""geth's default `timeout` for a trace."""


async def run_trace(call_pool: CallPool, work: Callable[[CallLimits], _T], timeout: float) -> _T:
    """`work` on the call pool under `timeout`, with geth's "execution timeout" wording."""
    return await call_pool.run(lambda limits: _bounded(work, limits), timeout)


def _bounded(work: Callable[[CallLimits], _T], limits: CallLimits) -> _T:
    try:
        return work(limits)
    except ExecutionTimeout as exc:
        if limits.deadline.at == float("-inf"):
            raise
        raise _TraceTimeout("execution timeout") from exc


class _TraceTimeout(ExecutionTimeout):
    """geth's wording for a trace that ran out of time (the pool raises it as `CallAborted`)."""


async def call_tree(
    chain: Chain, call_pool: CallPool, header: BlockHeaderAPI, index: int
) -> dict[str, Any]:
    """The callTracer tree of transaction `index` of `header`'s block."""

    def work(limits: CallLimits) -> Any:
        traced = replay_block(
            chain,
            header,
            limits.deadline,
            lambda position, _: CallTracer() if position == index else None,
            last=index,
        )
        return traced[0].tracer.result()

    result: dict[str, Any] = await run_trace(call_pool, work, DEFAULT_TRACE_TIMEOUT)
    return result
