"""What `debug_trace*` and `trace_*` share: tracer options, timeouts, and running a replay
on the call pool (the low-priority threads `eth_call` runs on, paused during block work)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from eth.abc import BlockHeaderAPI

from node.chain.calls import CallLimits
from node.chain.chain import Chain
from node.chain.tracing.call_tracer import CallTracer
from node.chain.tracing.four_byte import FourByteTracer
from node.chain.tracing.hooks import Tracer, TraceTooLarge
from node.chain.tracing.prestate import PrestateTracer
from node.chain.tracing.struct_logger import StructLogger
from node.query.callpool import CallPool
from node.query.reader import ChainReader
from node.query.traces import DEFAULT_TRACE_TIMEOUT, run_trace
from node.rpc import params as p
from node.rpc.errors import InvalidParams, ServerError

_T = TypeVar("_T")

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
        return await run_trace(call_pool, work, timeout)
    except TraceTooLarge as exc:
        raise ServerError(str(exc)) from None


def block_for(chain: Chain, which: str | int | bytes) -> BlockHeaderAPI | None:
    return ChainReader(chain).block(which)
