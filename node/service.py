"""Wires a node together and owns start/stop order.

Start: store -> chain -> pool -> engine -> RPC listeners. Stop (SIGINT/SIGTERM): listeners
stop accepting, the engine finishes the block it is committing, then the store is closed, so
a clean stop never leaves a half-written block (and a kill -9 is covered by atomic batches).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from node.chain.calls import CallExecutor
from node.chain.chain import Chain
from node.chain.events import ChainEvents
from node.chain.genesis import Genesis, dev_genesis
from node.consensus.solo import SoloValidator
from node.keys import load_or_create_node_key
from node.rpc.dispatch import Dispatcher
from node.rpc.eth import EthApi
from node.rpc.server import create_app
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    datadir: Path
    genesis: Path | None = None
    dev: bool = False
    dev_block_period: int = 1
    host: str = "127.0.0.1"
    rpc_port: int = 8545
    ws_port: int = 8546
    max_log_range: int = 10_000


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def resolve_genesis(config: NodeConfig, store: ChainStore, validator: bytes) -> Genesis:
    """The datadir's own genesis if it has one, else the configured or dev genesis."""
    stored = store.genesis_document()
    if stored is not None:
        genesis = Genesis.from_json(json.loads(stored))
        if config.genesis is not None and Genesis.load(config.genesis) != genesis:
            raise SystemExit("the datadir holds a different chain than --genesis describes")
        return genesis
    if config.genesis is not None:
        return Genesis.load(config.genesis)
    return dev_genesis(validator, block_period=config.dev_block_period)


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        config.datadir.mkdir(parents=True, exist_ok=True)
        self.key = load_or_create_node_key(config.datadir)
        self.store = LevelDBStore(config.datadir / "chaindata")
        try:
            self.chainstore = ChainStore(self.store)
            genesis = resolve_genesis(
                config, self.chainstore, self.key.public_key.to_canonical_address()
            )
            self.chain = Chain(self.chainstore, genesis)
            self.events = ChainEvents()
            self.pool = TxPool(
                PoolConfig(),
                AdmissionRules(chain_id=genesis.chain_id, block_gas_limit=genesis.gas_limit),
            )
            self.engine = SoloValidator(
                self.chain, self.pool, self.events, self.key, genesis.block_period_seconds
            )
            self.pool.on_pending.append(self._on_pending)
            self.dispatcher = Dispatcher()
            self.dispatcher.register_namespace(
                EthApi(self.chain, self.pool, CallExecutor(self.chain, genesis.gas_limit))
            )
        except BaseException:
            self.store.close()
            raise

    def _on_pending(self, pooled: object) -> None:
        self.engine.transactions_pending()
        self.events.publish_pending(pooled.hash)  # type: ignore[attr-defined]

    async def run(self) -> None:
        app = create_app(self.dispatcher)
        listeners = [
            _Listener(
                uvicorn.Config(
                    app,
                    host=self.config.host,
                    port=port,
                    log_level="warning",
                    lifespan="off",
                    ws_max_size=16 * 1024 * 1024,
                )
            )
            for port in dict.fromkeys((self.config.rpc_port, self.config.ws_port))
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        engine = asyncio.create_task(self.engine.run(), name="engine")
        servers = [asyncio.create_task(listener.serve()) for listener in listeners]
        log.info(
            "Tally node up: chain id %d, head #%d, validator %s, JSON-RPC http://%s:%d ws://%s:%d",
            self.chain.chain_id,
            self.chain.head.block_number,
            "0x" + self.engine.address.hex(),
            self.config.host,
            self.config.rpc_port,
            self.config.host,
            self.config.ws_port,
        )
        print(f"JSON-RPC listening on http://{self.config.host}:{self.config.rpc_port}", flush=True)
        try:
            waiters = [asyncio.create_task(stop.wait()), engine, *servers]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiters[0] and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for listener in listeners:
                listener.should_exit = True
            await asyncio.gather(*servers, return_exceptions=True)
            engine.cancel()
            await asyncio.gather(engine, return_exceptions=True)
            waiters[0].cancel()
            self.store.close()
            log.info("Tally node stopped cleanly")
