"""What `debug_trace*` and `trace_*` share: tracer options, timeouts, and running a replay
on the call pool (the low-priority threads `eth_call` runs on, paused during block work)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from eth.abc import BlockHeaderAPI

from node.chain.calls import CallLimits
from node.chain.chain import Chain
from node.chain.interpreter import ExecutionTimeout
from node.chain.tracing.call_tracer import CallTracer
from node.chain.tracing.four_byte import FourByteTracer
from node.chain.tracing.hooks import Tracer, TraceTooLarge
from node.chain.tracing.prestate import PrestateTracer
from node.chain.tracing.replay import replay_block
from node.chain.tracing.struct_logger import StructLogger
from node.query.reader import ChainReader
from node.rpc import params as p
from node.rpc.callpool import CallPool
from node.rpc.errors import InvalidParams, ServerError

_T = TypeVar("_T")

DEFAULT_TRACE_TIMEOUT = 5.0
"""geth's default `timeout` for a trace."""
MAX_TRACE_TIMEOUT = 60.0
"""The longest `timeout` a client may ask for: a trace holds one of the call pool's threads."""
TRACERS = ("callTracer", "prestateTracer", "4byteTracer")

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_CONFIG_KEYS = frozenset(
    {
        "tracer",
        "tracerConfig",
        "timeout",
        "reexec",
        "disableStack",
        "enableMemory",
        "disableStorage",
        "enableReturnData",
        "limit",
        "debug",
        "stateOverrides",
        "blockOverrides",
    }
)


def duration(value: Any) -> float:
    """A Go duration string ("5s", "300ms", "1m30s") in seconds, as geth's `timeout` takes it."""
    if not isinstance(value, str) or not value:
        raise InvalidParams('timeout must be a duration string such as "5s"')
    position, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise InvalidParams(f"timeout: invalid duration {value!r}")
    if total <= 0 or total > MAX_TRACE_TIMEOUT:
        raise InvalidParams(f"timeout must be above 0 and at most {MAX_TRACE_TIMEOUT:g}s")
    return total


def _flag(config: dict[str, Any], name: str) -> bool:
    value = config.get(name)
    return False if value is None else p.boolean(value, name)


def trace_config(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams("trace config must be an object")
    unknown = sorted(set(value) - _CONFIG_KEYS)
    if unknown:
        raise InvalidParams(f"trace config: unknown field {', '.join(unknown)}")
    if value.get("blockOverrides") is not None:
        raise InvalidParams("trace config: blockOverrides is not supported")
    return value


def timeout_of(config: dict[str, Any]) -> float:
    raw = config.get("timeout")
    return DEFAULT_TRACE_TIMEOUT if raw is None else duration(raw)


def tracer_factory(config: dict[str, Any]) -> Callable[[], Tracer]:
    """A maker of fresh tracers (one per transaction) as `config` asks; bad options: -32602."""
    name = config.get("tracer")
    options = config.get("tracerConfig")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise InvalidParams("tracerConfig must be an object")
    if name is None or name == "":
        limit = config.get("limit")
        steps = p.quantity(limit, "limit") if isinstance(limit, str) else (limit or 0)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise InvalidParams("limit must be a non-negative integer")
        flags = {
            "disable_stack": _flag(config, "disableStack"),
            "enable_memory": _flag(config, "enableMemory"),
            "disable_storage": _flag(config, "disableStorage"),
            "enable_return_data": _flag(config, "enableReturnData"),
        }
        return lambda: StructLogger(limit=steps, **flags)
    if name == "callTracer":
        top, logs = _flag(options, "onlyTopCall"), _flag(options, "withLog")
        return lambda: CallTracer(only_top_call=top, with_log=logs)
    if name == "prestateTracer":
        diff = _flag(options, "diffMode")
        return lambda: PrestateTracer(diff_mode=diff)
    if name == "4byteTracer":
        return FourByteTracer
    if isinstance(name, str):
        raise InvalidParams(
            f"tracer not found: {name} (Tally serves {', '.join(TRACERS)} and the default "
            "struct logger; JavaScript tracers are not supported)"
        )
    raise InvalidParams("tracer must be a string")


async def on_pool(call_pool: CallPool, work: Callable[[CallLimits], _T], timeout: float) -> _T:
    """`work` on the call pool under `timeout`; geth's "execution timeout" when it runs out."""
    try:
        return await call_pool.run(lambda limits: _bounded(work, limits), timeout)
    except TraceTooLarge as exc:
        raise ServerError(str(exc)) from None


def _bounded(work: Callable[[CallLimits], _T], limits: CallLimits) -> _T:
    try:
        return work(limits)
    except ExecutionTimeout as exc:
        if limits.deadline.at == float("-inf"):
            raise
        raise _TraceTimeout("execution timeout") from exc


class _TraceTimeout(ExecutionTimeout):
    """geth's wording for a trace that ran out of time (the pool answers it as -32000)."""


def block_for(chain: Chain, which: str | int | bytes) -> BlockHeaderAPI | None:
    return ChainReader(chain).block(which)


async def call_tree(
    chain: Chain, call_pool: CallPool, header: BlockHeaderAPI, index: int
) -> dict[str, Any]:
    """The callTracer tree of transaction `index` of `header`'s block (the REST API's view)."""

    def work(limits: CallLimits) -> Any:
        traced = replay_block(
            chain,
            header,
            limits.deadline,
            lambda position, _: CallTracer() if position == index else None,
            last=index,
        )
        return traced[0].tracer.result()

    result: dict[str, Any] = await on_pool(call_pool, work, DEFAULT_TRACE_TIMEOUT)
    return result


def flatten_calls(frame: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """A callTracer tree as rows, depth first, with integers where JSON-RPC has hex."""
    row = {
        "depth": depth,
        "type": frame["type"],
        "from": frame["from"],
        "to": frame.get("to"),
        "value": str(int(frame.get("value", "0x0"), 16)),
        "gas": int(frame["gas"], 16),
        "gas_used": int(frame["gasUsed"], 16),
        "input": frame["input"],
        "output": frame.get("output"),
        "error": frame.get("error"),
        "revert_reason": frame.get("revertReason"),
    }
    rows = [row]
    for call in frame.get("calls", []):
        rows.extend(flatten_calls(call, depth + 1))
    return rows
