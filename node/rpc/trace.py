"""Parity/OpenEthereum-style `trace_*` methods (the shape Besu and Erigon serve, which
Blockscout and The Graph read): `trace_block`, `trace_transaction`, `trace_filter` and
`trace_replayBlockTransactions` with the "trace" and "stateDiff" types.

Each replays blocks on the call pool under the node's call timeout; `trace_filter` spans at
most `max_range` blocks (`--max-log-range`), -32005 beyond, and skips blocks without
transactions without executing anything.
"""

from __future__ import annotations

from typing import Any, cast

from eth.abc import BlockHeaderAPI

from node.chain.calls import CallLimits
from node.chain.chain import Chain
from node.chain.tracing.hooks import Fanout
from node.chain.tracing.parity import ParityTracer, located
from node.chain.tracing.replay import TracedTransaction, replay_block
from node.chain.tracing.state_diff import StateDiffTracer
from node.qbftheader.hashing import onchain_hash
from node.query.callpool import CallPool
from node.query.reader import ChainReader
from node.rpc import params as p
from node.rpc.dispatch import rpc_method
from node.rpc.errors import InvalidParams, LimitExceeded
from node.rpc.tracecommon import block_for, on_pool

_REPLAY_TYPES = ("trace", "stateDiff", "vmTrace")


def _block_traces(header: BlockHeaderAPI, traced: list[TracedTransaction]) -> list[Any]:
    block_hash = onchain_hash(header)
    out: list[Any] = []
    for item in traced:
        traces = item.tracer.result()
        out.extend(located(traces, block_hash, header.block_number, item.tx_hash, item.index))
    return out


def _addresses(value: Any, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidParams(f"{name} must be a list of addresses")
    return frozenset("0x" + p.address(item, name).hex() for item in value)


def _trace_ends(trace: dict[str, Any]) -> tuple[str | None, str | None]:
    """(from, to) of a trace as trace_filter matches them."""
    action = trace["action"]
    if trace["type"] == "suicide":
        return action["address"], action["refundAddress"]
    if trace["type"] == "create":
        result = trace.get("result") or {}
        return action["from"], result.get("address")
    return action["from"], action["to"]


class TraceApi:
    def __init__(self, chain: Chain, call_pool: CallPool, max_range: int, timeout: float) -> None:
        self.chain = chain
        self.call_pool = call_pool
        self.max_range = max_range
        self.timeout = timeout

    def _replay(self, header: BlockHeaderAPI, limits: CallLimits) -> list[TracedTransaction]:
        return replay_block(self.chain, header, limits.deadline, lambda _i, _h: ParityTracer())

    @rpc_method("trace_block", 1)
    async def trace_block(self, block: Any) -> list[Any] | None:
        header = block_for(self.chain, p.block_tag(block))
        if header is None:
            return None
        return await on_pool(
            self.call_pool,
            lambda limits: _block_traces(header, self._replay(header, limits)),
            self.timeout,
        )

    @rpc_method("trace_transaction", 1)
    async def trace_transaction(self, tx_hash: Any) -> list[Any] | None:
        key = p.hash32(tx_hash, "transaction hash")
        record = self.chain.store.transaction(key)
        header = None if record is None else self.chain.header_by_hash(record.block_hash)
        if record is None or header is None:
            return None
        index = record.index

        def work(limits: CallLimits) -> list[Any]:
            traced = replay_block(
                self.chain,
                header,
                limits.deadline,
                lambda position, _: ParityTracer() if position == index else None,
                last=index,
            )
            return _block_traces(header, traced)

        return await on_pool(self.call_pool, work, self.timeout)

    @rpc_method("trace_replayBlockTransactions", 2)
    async def replay_block_transactions(self, block: Any, types: Any) -> list[Any] | None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InvalidParams("trace types must be a list of strings")
        unknown = sorted(set(types) - set(_REPLAY_TYPES))
        if unknown:
            raise InvalidParams(f"unknown trace type {', '.join(unknown)}")
        if "vmTrace" in types:
            raise InvalidParams(
                'trace type vmTrace is not supported (Tally serves "trace" and "stateDiff"; '
                "debug_traceTransaction's struct logs have every step)"
            )
        header = block_for(self.chain, p.block_tag(block))
        if header is None:
            return None

        def work(limits: CallLimits) -> list[Any]:
            traced = replay_block(
                self.chain,
                header,
                limits.deadline,
                lambda _i, _h: Fanout(ParityTracer(), StateDiffTracer()),
            )
            out = []
            for item in traced:
                calls, diff = cast(Fanout, item.tracer).tracers
                out.append(
                    {
                        "output": "0x" + cast(ParityTracer, calls).output().hex(),
                        "stateDiff": diff.result() if "stateDiff" in types else None,
                        "trace": calls.result() if "trace" in types else [],
                        "transactionHash": "0x" + item.tx_hash.hex(),
                        "vmTrace": None,
                    }
                )
            return out

        return await on_pool(self.call_pool, work, self.timeout)

    @rpc_method("trace_filter", 1)
    async def trace_filter(self, spec: Any) -> list[Any]:
        if not isinstance(spec, dict):
            raise InvalidParams("trace_filter takes an object")
        head = ChainReader(self.chain).head().number
        first = self._number(spec.get("fromBlock"), head)
        last = self._number(spec.get("toBlock"), head)
        if first > last:
            raise InvalidParams("fromBlock is after toBlock")
        if last - first + 1 > self.max_range:
            raise LimitExceeded(
                f"trace_filter spans {last - first + 1} blocks, more than the "
                f"{self.max_range} allowed (--max-log-range)"
            )
        if last > head:
            raise InvalidParams(f"toBlock {last} is past the head ({head})")
        senders = _addresses(spec.get("fromAddress"), "fromAddress")
        recipients = _addresses(spec.get("toAddress"), "toAddress")
        after = p.quantity(spec["after"], "after") if spec.get("after") is not None else 0
        count = p.quantity(spec["count"], "count") if spec.get("count") is not None else None

        def work(limits: CallLimits) -> list[Any]:
            matched: list[Any] = []
            if count == 0:
                return matched
            skipped = 0
            for number in range(max(first, 1), last + 1):
                header = self.chain.header_by_number(number)
                if header is None or not self.chain.store.block_tx_hashes(onchain_hash(header)):
                    continue
                for trace in _block_traces(header, self._replay(header, limits)):
                    source, target = _trace_ends(trace)
                    if senders is not None and source not in senders:
                        continue
                    if recipients is not None and target not in recipients:
                        continue
                    if skipped < after:
                        skipped += 1
                        continue
                    matched.append(trace)
                    if count is not None and len(matched) >= count:
                        return matched
            return matched

        return await on_pool(self.call_pool, work, self.timeout)

    def _number(self, value: Any, head: int) -> int:
        tag = p.block_tag(value)
        if isinstance(tag, bytes):
            raise InvalidParams("trace_filter takes block numbers or tags, not hashes")
        if isinstance(tag, int):
            return tag
        return 0 if tag == "earliest" else head
