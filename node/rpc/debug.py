"""geth's `debug_trace*` methods: any block since genesis, any of geth's built-in tracers.

A trace re-executes (`node.chain.tracing.replay`) on the call pool, under the request's
`timeout` (geth's option, default 5 s): block production and consensus go first.
"""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI

from node.chain.calls import CallError, CallExecutor, CallLimits
from node.chain.chain import Chain
from node.chain.tracing.hooks import Tracer
from node.chain.tracing.replay import replay_block
from node.query.callpool import CallPool
from node.rpc import params as p
from node.rpc.callparams import call_request, state_overrides
from node.rpc.dispatch import rpc_method
from node.rpc.errors import ServerError
from node.rpc.tracecommon import block_for, on_pool, timeout_of, trace_config, tracer_factory


class DebugApi:
    def __init__(self, chain: Chain, calls: CallExecutor, call_pool: CallPool) -> None:
        self.chain = chain
        self.calls = calls
        self.call_pool = call_pool

    @rpc_method("debug_traceTransaction", 1, 2)
    async def trace_transaction(self, tx_hash: Any, config: Any) -> Any:
        key = p.hash32(tx_hash, "transaction hash")
        options = trace_config(config)
        make = tracer_factory(options)
        record = self.chain.store.transaction(key)
        header = None if record is None else self.chain.header_by_hash(record.block_hash)
        if record is None or header is None:
            raise ServerError("transaction not found")
        index = record.index

        def work(limits: CallLimits) -> Any:
            traced = replay_block(
                self.chain,
                header,
                limits.deadline,
                lambda position, _: make() if position == index else None,
                last=index,
            )
            return traced[0].tracer.result()

        return await on_pool(self.call_pool, work, timeout_of(options))

    @rpc_method("debug_traceBlockByNumber", 1, 2)
    async def trace_block_by_number(self, block: Any, config: Any) -> Any:
        return await self._trace_block(block_for(self.chain, p.block_tag(block)), config)

    @rpc_method("debug_traceBlockByHash", 1, 2)
    async def trace_block_by_hash(self, block_hash: Any, config: Any) -> Any:
        header = self.chain.header_by_hash(p.hash32(block_hash, "block hash"))
        return await self._trace_block(header, config)

    async def _trace_block(self, header: BlockHeaderAPI | None, config: Any) -> Any:
        options = trace_config(config)
        make = tracer_factory(options)
        if header is None:
            raise ServerError("block not found")
        if header.block_number == 0:
            raise ServerError("genesis is not traceable")

        def work(limits: CallLimits) -> Any:
            traced = replay_block(self.chain, header, limits.deadline, lambda _i, _h: make())
            return [
                {"txHash": "0x" + item.tx_hash.hex(), "result": item.tracer.result()}
                for item in traced
            ]

        return await on_pool(self.call_pool, work, timeout_of(options))

    @rpc_method("debug_traceCall", 1, 3)
    async def trace_call(self, request: Any, block: Any, config: Any) -> Any:
        message = call_request(request)
        options = trace_config(config)
        make = tracer_factory(options)
        overrides = state_overrides(options.get("stateOverrides"))
        header = block_for(self.chain, p.block_tag(block))
        if header is None:
            raise ServerError("header not found")

        def work(limits: CallLimits) -> Any:
            tracer: Tracer = make()
            self.calls.trace(message, header, overrides, limits=limits, tracer=tracer)
            return tracer.result()

        try:
            return await on_pool(self.call_pool, work, timeout_of(options))
        except CallError as exc:
            raise ServerError(str(exc)) from exc
