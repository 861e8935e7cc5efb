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
from typing import Any

import uvicorn
from eth.abc import BlockAPI

from node.api.ratelimit import DEFAULT_RATE_LIMIT
from node.chain.calls import CallExecutor
from node.chain.chain import Chain
from node.chain.events import ChainEvents, CommittedBlock
from node.chain.genesis import Genesis, dev_genesis
from node.consensus.engine import ConsensusEngine
from node.consensus.solo import SoloValidator
from node.consensus.voting import VoteProposals
from node.keys import load_or_create_node_key
from node.metrics import NodeMetrics
from node.network import NetworkConfig
from node.p2p.allowlist import AllowList
from node.p2p.host import P2PHost
from node.permissions.rules import ACCOUNT_RULES, NODE_RULES, PermissionRules
from node.rpc.dispatch import Dispatcher
from node.rpc.eth import EthApi
from node.rpc.fees import FeesApi
from node.rpc.filters import FiltersApi
from node.rpc.logquery import LogSearch
from node.rpc.logs import LogsApi
from node.rpc.node import NodeApi
from node.rpc.proofs import ProofsApi
from node.rpc.qbft import QbftApi
from node.rpc.server import create_app, rpc_routes
from node.rpc.subscriptions import SubscriptionsApi
from node.rpc.tally import TallyApi
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore
from node.sync import BlockSync
from node.txgossip import TransactionGossip
from node.txpool.admission import AdmissionRules
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.transaction import PooledTransaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    datadir: Path
    genesis: Path | None = None
    dev: bool = False
    dev_block_period: int = 1
    dev_permissioned: bool = False
    host: str = "127.0.0.1"
    rpc_port: int = 8545
    ws_port: int = 8546
    max_log_range: int = 10_000
    max_log_results: int = 10_000
    network: Path | None = None
    p2p_port: int = 30303
    api: bool = True
    """Serve the REST API (/api/v1, /openapi.json, /docs, /explorer/) beside JSON-RPC."""
    api_rate_limit: str = DEFAULT_RATE_LIMIT
    """Requests per credential, as `limits` reads them: "50/second;1000/minute"."""
    api_session_ttl: int = 900
    """Seconds a sign-in-with-Ethereum session token lives."""
    api_challenge_ttl: int = 300
    """Seconds a sign-in challenge may wait for its signature."""


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
    return dev_genesis(
        validator, block_period=config.dev_block_period, permissioned=config.dev_permissioned
    )


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
            self.calls = CallExecutor(self.chain, genesis.gas_limit)
            self.permissions = self._setup_permissions(genesis)
            self.chain_lock = asyncio.Lock()
            self.metrics = NodeMetrics()
            self.proposals = VoteProposals()
            self.p2p: P2PHost | None = None
            self.sync: BlockSync | None = None
            if config.network is not None:
                self._setup_network(NetworkConfig.load(config.network))
            self.engine = self._make_engine()
            self.pool.on_pending.append(self._on_pending)
            self.events.on_block(self._on_block)
            self.metrics.bind(
                height=lambda: self.chain.head.block_number,
                pool=self.pool.stats,
                peers=(lambda: self.p2p.peer_count) if self.p2p is not None else None,
            )
            self.dispatcher = Dispatcher()
            self.dispatcher.register_namespace(EthApi(self.chain, self.pool, self.calls))
            self.dispatcher.register_namespace(NodeApi(self.p2p, self.sync, self.chain))
            self.dispatcher.register_namespace(QbftApi(self.chain, self.proposals))
            search = LogSearch(self.chain, config.max_log_range, config.max_log_results)
            self.subscriptions = SubscriptionsApi(self.chainstore, self.events)
            for namespace in (
                LogsApi(search),
                FiltersApi(search, self.events),
                self.subscriptions,
                ProofsApi(self.chain),
                FeesApi(self.chain),
                TallyApi(self.chain),
            ):
                self.dispatcher.register_namespace(namespace)
        except BaseException:
            self.store.close()
            raise

    @property
    def address(self) -> bytes:
        return self.key.public_key.to_canonical_address()

    def _setup_permissions(self, genesis: Genesis) -> PermissionRules | None:
        """On-chain account rules for pool and blocks, when the genesis names them."""
        if not genesis.permissions:
            return None
        rules = PermissionRules(
            self.calls,
            genesis.permissions.get(ACCOUNT_RULES),
            genesis.permissions.get(NODE_RULES),
        )
        self.chain.sender_rules = rules.sender_check

        def allowed_at_head(sender: bytes) -> bool:
            check = rules.sender_check(self.chain.head)
            return check is None or check(sender)

        self.pool.sender_allowed = allowed_at_head
        return rules

    def _apply_node_rules(self) -> None:
        """Keep p2p links to the nodes NodeRules lists at the head; drop the others."""
        if self.permissions is None or self.p2p is None:
            return
        allowed = self.permissions.allowed_nodes(self.chain.head)
        if allowed is None:
            return
        self.allowlist.replace(allowed | {self.address})
        dropped = self.p2p.recheck_permissions()
        for address in dropped:
            log.warning("disconnected 0x%s: no longer in NodeRules", address.hex())

    def _setup_network(self, network: NetworkConfig) -> None:
        genesis_hash = self.chain.store.canonical_hash(0)
        assert genesis_hash is not None
        self.network = network
        self.allowlist = AllowList(network.addresses)
        self.p2p = P2PHost(
            self.key,
            self.config.host,
            self.config.p2p_port,
            self.chain.chain_id,
            genesis_hash,
            self.allowlist,
        )
        self.sync = BlockSync(self.chain, self.p2p, self.events, self.chain_lock, self._imported)
        self.sync.admitted = self.pool.admitted
        self.tx_gossip = TransactionGossip(self.p2p, self.pool, self.chain)

    def _make_engine(self) -> ConsensusEngine | None:
        """Solo QBFT for a network of one validator; none for a non-validating member."""
        validators = self.chain.validator_tally(self.chain.head_hash).validators
        if self.config.network is None or validators == (self.address,):
            return SoloValidator(
                self.chain,
                self.pool,
                self.events,
                self.key,
                self.chain.genesis.block_period_seconds,
                chain_lock=self.chain_lock,
            )
        if self.address not in validators:
            return None
        assert self.p2p is not None and self.sync is not None
        from node.consensus.qbft_engine import QbftEngine

        return QbftEngine(
            self.chain,
            self.pool,
            self.events,
            self.key,
            self.p2p,
            self.sync,
            self.chain_lock,
            self.proposals,
            self.metrics,
        )

    def _on_pending(self, pooled: PooledTransaction) -> None:
        if self.engine is not None:
            self.engine.transactions_pending()
        self.events.publish_pending(pooled.hash)
        if self.p2p is not None:
            self.tx_gossip.queue(pooled)

    def _on_block(self, block: CommittedBlock) -> None:
        self.metrics.transactions.inc(len(block.tx_hashes))
        self._apply_node_rules()
        if block.local and self.sync is not None:
            self.sync.announce(block.header.block_number)
            self.sync.broadcast_status()

    def _imported(self, block: CommittedBlock, blocks: list[BlockAPI]) -> None:
        senders = {tx.sender for item in blocks for tx in item.transactions}
        self.pool.on_new_block(
            block.tx_hashes, self.chain.state_at(self.chain.head), senders=senders
        )
        if self.sync is not None:
            self.sync.broadcast_status()
        self.events.publish_block(block)

    def _http_app(self) -> Any:
        """JSON-RPC alone, or inside the REST API's app on the same listener."""
        if not self.config.api:
            return create_app(
                self.dispatcher,
                on_disconnect=self.subscriptions.drop_connection,
                metrics=self.metrics,
            )
        from node.api.app import create_api
        from node.api.context import ApiContext
        from node.api.credentials import ApiKeyStore
        from node.api.merchants import MerchantRegistry
        from node.api.ratelimit import RateLimiter
        from node.api.signin import SignIn

        keys = ApiKeyStore(self.store)
        bootstrap = keys.ensure_bootstrap_admin(self.config.datadir)
        if bootstrap is not None:
            log.info("REST API: bootstrap admin key written to %s", bootstrap)
        p2p, sync = self.p2p, self.sync
        context = ApiContext(
            chain=self.chain,
            pool=self.pool,
            calls=self.calls,
            eth=EthApi(self.chain, self.pool, self.calls),
            proofs=ProofsApi(self.chain),
            keys=keys,
            merchants=MerchantRegistry(self.store),
            signin=SignIn(
                self.chain.chain_id,
                challenge_ttl=self.config.api_challenge_ttl,
                token_ttl=self.config.api_session_ttl,
            ),
            limiter=RateLimiter(self.config.api_rate_limit),
            permissioned=bool(self.permissions and self.permissions.account_rules),
            peers=(lambda: p2p.peer_count) if p2p is not None else (lambda: 0),
            syncing=(lambda: sync.is_syncing()) if sync is not None else (lambda: False),
            metrics=self.metrics,
        )
        routes = rpc_routes(
            self.dispatcher, on_disconnect=self.subscriptions.drop_connection, metrics=self.metrics
        )
        return create_api(context, routes)

    async def run(self) -> None:
        app = self._http_app()
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
        background: list[asyncio.Task] = []
        if self.p2p is not None and self.sync is not None:
            self._apply_node_rules()
            await self.p2p.start()
            for peer in self.network.peers_of(self.address):
                self.p2p.connect(peer.address, peer.host, peer.p2p_port)
            background.append(asyncio.create_task(self.sync.run(), name="sync"))
        if self.engine is not None:
            background.append(asyncio.create_task(self.engine.run(), name="engine"))
        servers = [asyncio.create_task(listener.serve()) for listener in listeners]
        log.info(
            "Tally node up: chain id %d, head #%d, %s 0x%s, JSON-RPC http://%s:%d ws://%s:%d",
            self.chain.chain_id,
            self.chain.head.block_number,
            "validator" if self.engine is not None else "member",
            self.address.hex(),
            self.config.host,
            self.config.rpc_port,
            self.config.host,
            self.config.ws_port,
        )
        print(f"JSON-RPC listening on http://{self.config.host}:{self.config.rpc_port}", flush=True)
        try:
            waiters = [asyncio.create_task(stop.wait()), *background, *servers]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiters[0] and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for listener in listeners:
                listener.should_exit = True
            await asyncio.gather(*servers, return_exceptions=True)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self.p2p is not None:
                await self.p2p.stop()
            waiters[0].cancel()
            self.store.close()
            log.info("Tally node stopped cleanly")
