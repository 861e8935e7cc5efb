"""Wires a node together and owns start/stop order.

Start: store -> chain -> pool (restored from its journal) -> engine -> RPC listeners. Stop
(SIGINT/SIGTERM): listeners stop accepting, the engine finishes the block it is committing, the
journal writes what it holds, then the store is closed, so a clean stop never leaves a
half-written block (and a kill -9 is covered by atomic batches and the journal's fsyncs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from eth.abc import BlockAPI, BlockHeaderAPI
from starlette.types import ASGIApp

from node.api.headers import SecurityHeaders, explorer_policy
from node.api.ratelimit import (
    DEFAULT_ADDRESS_RATE_LIMIT,
    DEFAULT_AUTH_FAILURE_LIMIT,
    DEFAULT_RATE_LIMIT,
    RateLimits,
    trusted_proxies,
)
from node.api.signin import MAX_OPEN_CHALLENGES, SiweOrigin
from node.chain.backfill import InternalCallBackfill
from node.chain.calls import CallExecutor
from node.chain.chain import Chain, DifferentChain
from node.chain.genesis import DEV_CHAIN_ID, Genesis, GenesisError, dev_genesis
from node.chain.genesis_file import GenesisFile
from node.chain.notifications import ChainEvents, CommittedBlock
from node.consensus.engine import ConsensusEngine
from node.consensus.executed import ExecutedBlocks
from node.consensus.solo import SoloValidator
from node.consensus.sync import BlockSync
from node.consensus.voting import VoteProposals
from node.keys import NodeKeySource, load_node_signer
from node.metrics import NodeMetrics
from node.p2p.allowlist import AllowList
from node.p2p.host import P2PHost
from node.p2p.network import NetworkConfig
from node.permissions.rules import ACCOUNT_RULES, NODE_RULES, PermissionRules, SenderCheck
from node.query.callpool import DEFAULT_EVM_TIMEOUT, DEFAULT_GAS_CAP, CallPool
from node.rpc.admin import (
    DEFAULT_ADMIN_HOST,
    check_loopback,
    create_admin_app,
    load_or_create_token,
)
from node.rpc.browser import DEFAULT_VHOSTS, BrowserGuard, BrowserPolicy
from node.rpc.debug import DebugApi
from node.rpc.dispatch import DEFAULT_PUBLIC_NAMESPACES, Dispatcher, public_namespaces
from node.rpc.eth import EthApi
from node.rpc.fees import FeesApi
from node.rpc.filters import DEFAULT_FILTER_TIMEOUT, FiltersApi
from node.rpc.logquery import LogSearch
from node.rpc.logs import LogsApi
from node.rpc.node import NodeApi
from node.rpc.proofs import ProofsApi
from node.rpc.qbft import QbftApi
from node.rpc.raw import DebugRawApi
from node.rpc.server import create_app, rpc_routes
from node.rpc.subscriptions import SubscriptionsApi
from node.rpc.tally import TallyApi
from node.rpc.trace import TraceApi
from node.rpc.wslimits import WsLimits
from node.storage.chainstore import ChainStore
from node.storage.store import DEFAULT_CACHE_MIB, DEFAULT_OPEN_FILES, LevelDBStore
from node.tls import TlsSettings
from node.txpool.admission import AdmissionRules
from node.txpool.gossip import TransactionGossip
from node.txpool.journal import JOURNAL_FILE, JournalGate, TxJournal
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.prechecks import DEFAULT_WORKERS, Prechecks
from node.txpool.transaction import PooledTransaction

if TYPE_CHECKING:
    from node.api.streams.manager import StreamManager

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    datadir: Path
    genesis: GenesisFile | None = None
    """`run`'s --genesis, read once by the command, which decided its refusals from it; None:
    the datadir's own genesis, or a new dev chain's."""
    dev_block_period: int = 1
    dev_permissioned: bool = False
    host: str = "127.0.0.1"
    rpc_port: int = 8545
    ws_port: int = 8546
    max_log_range: int = 10_000
    max_log_results: int = 10_000
    rpc_evm_timeout: float = DEFAULT_EVM_TIMEOUT
    """Seconds one eth_call / eth_estimateGas may execute (geth's --rpc.evmtimeout)."""
    rpc_gas_cap: int = DEFAULT_GAS_CAP
    """Most gas one eth_call / eth_estimateGas may use; more is lowered to it (--rpc.gascap)."""
    rpc_filter_timeout: float = DEFAULT_FILTER_TIMEOUT
    ws_max_connections: int = 1000
    ws_max_per_address: int = 100
    """Seconds a filter (eth_newFilter...) lives without a poll (geth: 5 minutes)."""
    network: Path | None = None
    p2p_port: int = 30303
    txpool_journal: bool = True
    """Keep the pool in `<datadir>/txpool.journal` across restarts and kill -9
    (`node.txpool.journal`); off, a restart starts with an empty pool."""
    txpool_workers: int | None = None
    """Processes that decode batched raw transactions and recover their senders off the event
    loop (`node.txpool.prechecks`); 0: all on the loop; None: `DEFAULT_WORKERS`."""
    db_cache_mib: int | None = None
    """LevelDB's block cache in MiB (`node.storage.store.LevelDBStore`); None: its default."""
    db_open_files: int | None = None
    """Tables LevelDB keeps open and mapped (`node.storage.store.LevelDBStore`); None: its
    default."""
    api: bool = True
    """Serve the REST API (/api/v1, /openapi.json, /docs, /explorer/) beside JSON-RPC."""
    api_rate_limit: str = DEFAULT_RATE_LIMIT
    """Requests per caller (an API key, a signed-in wallet, or an address's anonymous callers),
    as `limits` reads them: "50/second;1000/minute"."""
    api_address_rate_limit: str = DEFAULT_ADDRESS_RATE_LIMIT
    """Requests per client address, whatever credentials they carry (`node.api.ratelimit`)."""
    api_auth_failure_limit: str = DEFAULT_AUTH_FAILURE_LIMIT
    """Failed authentications per client address before it is refused with 429."""
    api_trusted_proxies: tuple[str, ...] = ()
    """Reverse proxies (IPs, CIDRs) whose X-Forwarded-For names the client; none: the peer."""
    api_siwe_domain: str | None = None
    """Sign-in-with-Ethereum domain, host[:port] or https://host[:port]; None: host:rpc_port."""
    api_max_challenges: int = MAX_OPEN_CHALLENGES
    """Sign-in challenges open at once on this node; beyond, new ones are refused (503)."""
    api_session_ttl: int = 900
    """Seconds a sign-in-with-Ethereum session token lives."""
    api_challenge_ttl: int = 300
    """Seconds a sign-in challenge may wait for its signature."""
    api_webhook_hosts: tuple[str, ...] = ()
    """Event-stream webhook targets allowed (names, IPs, CIDRs); none: public addresses only."""
    rpc_api: tuple[str, ...] = DEFAULT_PUBLIC_NAMESPACES
    """JSON-RPC namespaces the public listener serves (never admin methods: `node.rpc.dispatch`)."""
    vhosts: tuple[str, ...] = DEFAULT_VHOSTS
    """Host names the public listener answers besides IP literals and `host` ("*": any)."""
    cors_domains: tuple[str, ...] = ()
    """Foreign web origins allowed to call the public listener ("*": any; `node.rpc.browser`)."""
    explorer_connect: tuple[str, ...] = ()
    """Origins the explorer page may fetch from besides the node, e.g. the bank gateway's
    (its Content-Security-Policy `connect-src`; `node.api.headers`)."""
    admin_host: str = DEFAULT_ADMIN_HOST
    """The admin listener's address: loopback only (`node.rpc.admin`)."""
    admin_port: int | None = None
    """The admin listener (every method, bearer token): None runs none; `tally` uses 8551."""
    tls: TlsSettings | None = None
    """TLS (and mutual TLS with a client CA) on the public listener; the admin listener stays
    plain HTTP: it is loopback only, where a certificate for the public name would not match."""
    node_key: NodeKeySource = field(default_factory=NodeKeySource)
    """Where the node key lives (`node.keys`): plaintext in the datadir, a token, a file."""


TLS_CLOSE_GRACE = 2.0
"""Seconds a stopping TLS listener waits for its connections to close before dropping them."""


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the node."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's graceful stop, bounded under TLS: closing a TLS connection waits for the
        client's close_notify, which an idle pooled client (requests under web3.py) never
        sends, and the event loop would wait 30 s for each. After `TLS_CLOSE_GRACE` those
        connections are dropped; answers in flight had that long to finish."""
        closing = asyncio.create_task(super().shutdown(sockets))
        if self.config.ssl is not None:
            await asyncio.wait({closing}, timeout=TLS_CLOSE_GRACE)
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        await closing


def _serving(
    context: ssl.SSLContext,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """uvicorn's hook for a context built and checked before anything started."""
    return lambda _config, _default: context


def resolve_genesis(config: NodeConfig, store: ChainStore, validator: bytes) -> Genesis:
    """The configured genesis (`Chain` checks that the datadir holds it), else the datadir's
    own, else a new dev genesis."""
    if config.genesis is not None:
        return config.genesis.genesis
    stored = store.genesis_document()
    if stored is not None:
        return Genesis.from_json(json.loads(stored))
    return dev_genesis(
        validator, block_period=config.dev_block_period, permissioned=config.dev_permissioned
    ).dated_now()


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        # Listener settings are checked before the datadir is touched (`ListenerConfigError`).
        public_namespaces(config.rpc_api)
        self.browser_policy = BrowserPolicy.build(
            config.vhosts, config.cors_domains, config.host, (config.rpc_port, config.ws_port)
        )
        self.explorer_policy = explorer_policy(config.explorer_connect)
        if config.admin_port is not None:
            check_loopback(config.admin_host)
        self.tls_context = config.tls.server_context() if config.tls is not None else None
        self.siwe_origin = SiweOrigin.parse(
            config.api_siwe_domain or self._default_siwe_origin(), config.host, config.rpc_port
        )
        self.trusted_proxies = trusted_proxies(config.api_trusted_proxies)
        self.rate_limits = RateLimits(
            config.api_rate_limit, config.api_address_rate_limit, config.api_auth_failure_limit
        )
        # A plaintext key on a real chain is refused, and a store's secret checked, before the
        # datadir is touched (`PlaintextKeyRefused`, `NodeKeyUsage`, `KeyStoreError`).
        chain_id = config.genesis.genesis.chain_id if config.genesis else DEV_CHAIN_ID
        config.node_key.refuse_plaintext(chain_id, DEV_CHAIN_ID)
        self.key = load_node_signer(config.node_key, config.datadir)
        self._address = self.key.public_key.to_canonical_address()
        config.datadir.mkdir(parents=True, exist_ok=True)
        self.admin_token_file = (
            None if config.admin_port is None else load_or_create_token(config.datadir)
        )
        self.store = LevelDBStore(
            config.datadir / "chaindata",
            config.db_cache_mib or DEFAULT_CACHE_MIB,
            config.db_open_files or DEFAULT_OPEN_FILES,
        )
        try:
            self.chainstore = ChainStore(self.store)
            genesis = resolve_genesis(config, self.chainstore, self._address)
            self.permissions: PermissionRules | None = None  # read through the chain, below
            self.sync: BlockSync | None = None
            self.chain = self._open_chain(genesis)
            self.events = ChainEvents()
            self.backfill = InternalCallBackfill(self.chain, self.events)
            self.pool = TxPool(
                PoolConfig(),
                AdmissionRules(chain_id=genesis.chain_id, block_gas_limit=genesis.gas_limit),
                sender_allowed=self._sender_allowed_at_head if genesis.permissions else None,
                syncing=self._syncing,
            )
            self.calls = CallExecutor(self.chain, genesis.gas_limit)
            self.call_pool = CallPool(
                timeout=config.rpc_evm_timeout,
                gas_cap=config.rpc_gas_cap,
                block_work=self.chain.block_work,
            )
            workers = config.txpool_workers
            self.prechecks = Prechecks(DEFAULT_WORKERS if workers is None else workers)
            self.permissions = self._setup_permissions(genesis)
            self.journal: TxJournal | None = None
            self.streams: StreamManager | None = None  # made with the REST API's app
            if config.txpool_journal:  # replayed before anything can hear of the pool
                self.journal = TxJournal(config.datadir / JOURNAL_FILE, self.pool)
                self.journal.load(self.chain.state_at(self.chain.head))
            self.chain_lock = asyncio.Lock()
            self.proposals = VoteProposals()
            self.p2p: P2PHost | None = None
            self.executed = ExecutedBlocks()
            if config.network is not None:
                self._setup_network(NetworkConfig.load(config.network))
            p2p = self.p2p
            self.metrics = NodeMetrics(
                height=lambda: self.chain.head.block_number,
                pool=self.pool.stats,
                peers=(lambda: p2p.peer_count) if p2p is not None else None,
            )
            self.engine = self._make_engine()
            self.pool.on_pending.append(self._on_pending)
            self.events.on_block(self._on_block)
            self.dispatcher = Dispatcher()
            self.dispatcher.register_namespace(
                EthApi(self.chain, self.pool, self.calls, self.call_pool, self.prechecks)
            )
            self.dispatcher.register_namespace(NodeApi(self.p2p, self.sync, self.chain))
            self.dispatcher.register_namespace(
                QbftApi(self.chain, self.proposals, self._live_nodes, self._allowed_nodes)
            )
            search = LogSearch(self.chain, config.max_log_range, config.max_log_results)
            self.subscriptions = SubscriptionsApi(self.chainstore, self.events)
            for namespace in (
                LogsApi(search),
                FiltersApi(search, self.events, timeout=config.rpc_filter_timeout),
                self.subscriptions,
                ProofsApi(self.chain),
                FeesApi(self.chain),
                TallyApi(self.chain),
                DebugApi(self.chain, self.calls, self.call_pool),
                DebugRawApi(self.chain, self.pool),
                TraceApi(self.chain, self.call_pool, config.max_log_range, self.call_pool.timeout),
            ):
                self.dispatcher.register_namespace(namespace)
            self.public_rpc = self.dispatcher.public(config.rpc_api)
        except BaseException:
            self.store.close()
            raise

    def _open_chain(self, genesis: Genesis) -> Chain:
        """The datadir's chain, block 0 written on a first start; a datadir holding another
        chain than --genesis is refused in the words of the command line."""
        source = self.config.genesis
        try:
            return Chain(
                self.chainstore,
                genesis,
                sender_rules=self._sender_rules,
                genesis_sha256=None if source is None else source.sha256,
                block_zero=None if source is None else source.take_block_zero(),
            )
        except DifferentChain as exc:
            if source is None:
                raise
            raise GenesisError(
                "the datadir holds a different chain than --genesis describes"
            ) from exc

    def _default_siwe_origin(self) -> str | None:
        """With TLS, sign-in names the https origin; without, `SiweOrigin`'s host:port."""
        if self.tls_context is None:
            return None
        host = self.config.host
        return f"https://{f'[{host}]' if ':' in host else host}:{self.config.rpc_port}"

    @property
    def address(self) -> bytes:
        return self._address

    @property
    def is_validator(self) -> bool:
        """Whether this node is among the validators at the head."""
        return self.address in self.chain.validator_tally(self.chain.head_hash).validators

    def _live_nodes(self) -> frozenset[bytes]:
        """This node and the peers connected now: the validators that could seal a block."""
        peers = self.p2p.peers() if self.p2p is not None else []
        return frozenset({self.address, *(peer.address for peer in peers)})

    def _allowed_nodes(self) -> frozenset[bytes] | None:
        """The nodes that may run on this network: NodeRules at the head, else network.json."""
        if self.permissions is not None:
            listed = self.permissions.allowed_nodes(self.chain.head)
            if listed is not None:
                return listed
        return self.network.addresses if self.p2p is not None else None

    def _setup_permissions(self, genesis: Genesis) -> PermissionRules | None:
        """On-chain account rules for pool and blocks, when the genesis names them."""
        if not genesis.permissions:
            return None
        return PermissionRules(
            self.calls,
            genesis.permissions.get(ACCOUNT_RULES),
            genesis.permissions.get(NODE_RULES),
        )

    def _sender_rules(self, parent: BlockHeaderAPI) -> SenderCheck | None:
        """The chain's account permissioning. The rules are contracts read through calls on
        the chain itself, so they exist only once the chain does: the chain is handed this
        method, which answers "anyone" until (and unless) the rules are set up."""
        return None if self.permissions is None else self.permissions.sender_check(parent)

    def _sender_allowed_at_head(self, sender: bytes) -> bool:
        """The pool's account permissioning: the rules as of the head."""
        check = self._sender_rules(self.chain.head)
        return check is None or check(sender)

    def _syncing(self) -> bool:
        """Whether block sync knows our head is behind (the pool then keeps far nonces)."""
        return self.sync is not None and self.sync.is_syncing()

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
        self.sync = BlockSync(
            self.chain,
            self.p2p,
            self.events,
            self.chain_lock,
            self._imported,
            executed=self.executed.get,
            admitted=self.pool.admitted,
        )
        self.tx_gossip = TransactionGossip(self.p2p, self.pool, self.chain)
        self.pool.on_added.append(self._forward_while_syncing)

    def _make_engine(self) -> ConsensusEngine:
        """Solo QBFT for a network of one validator, else QBFT over p2p.

        A member runs the QBFT engine too, idle at every height whose validators do not
        include it (as a validator voted out does): the block where a vote adds it is the
        first it validates, with no restart (the README's runbook for a new institution).
        """
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
            self.executed,
        )

    def _on_pending(self, pooled: PooledTransaction) -> None:
        if self.engine is not None:
            self.engine.transactions_pending()
        self.events.publish_pending(pooled.hash)
        if self.p2p is not None:
            self.tx_gossip.queue(pooled)

    def _forward_while_syncing(self, pooled: PooledTransaction) -> None:
        """Send peers a transaction held queued here while our head is behind theirs: it may
        be executable at their head, and waiting for this node to catch up would delay it."""
        assert self.sync is not None
        if not self.pool.is_pending(pooled.hash) and self.sync.is_syncing():
            self.tx_gossip.queue(pooled)

    def _durable_answers(self, app: ASGIApp) -> ASGIApp:
        """`app` answering only once what a request admitted is journaled (`JournalGate`)."""
        return app if self.journal is None else JournalGate(app, self.journal)

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
                self.public_rpc,
                on_disconnect=self.subscriptions.drop_connection,
                metrics=self.metrics,
                ws_limits=self._ws_limits(),
            )
        from node.api.app import create_api
        from node.api.context import ApiContext
        from node.api.credentials import ApiKeyStore
        from node.api.merchants import MerchantRegistry
        from node.api.signin import SignIn
        from node.api.streams.manager import StreamManager
        from node.api.streams.webhook import WebhookHosts
        from node.domain.event_decoding import EventDecoder

        keys = ApiKeyStore(self.store)
        bootstrap = keys.ensure_bootstrap_admin(self.config.datadir)
        if bootstrap is not None:
            log.info("REST API: bootstrap admin key written to %s", bootstrap)
        p2p, sync = self.p2p, self.sync
        events = EventDecoder()
        self.streams = StreamManager(
            self.chain, self.events, events, WebhookHosts(self.config.api_webhook_hosts), keys
        )
        context = ApiContext(
            chain=self.chain,
            pool=self.pool,
            calls=self.calls,
            call_pool=self.call_pool,
            keys=keys,
            merchants=MerchantRegistry(self.store),
            signin=SignIn(
                self.chain.chain_id,
                self.siwe_origin,
                challenge_ttl=self.config.api_challenge_ttl,
                token_ttl=self.config.api_session_ttl,
                max_open=self.config.api_max_challenges,
            ),
            limiter=self.rate_limits,
            permissioned=bool(self.permissions and self.permissions.account_rules),
            peers=(lambda: p2p.peer_count) if p2p is not None else (lambda: 0),
            syncing=(lambda: sync.is_syncing()) if sync is not None else (lambda: False),
            metrics=self.metrics,
            streams=self.streams,
            events=events,
        )
        routes = rpc_routes(
            self.public_rpc,
            on_disconnect=self.subscriptions.drop_connection,
            metrics=self.metrics,
            ws_limits=self._ws_limits(),
        )
        return create_api(context, routes)

    def _ws_limits(self) -> WsLimits:
        return WsLimits(self.config.ws_max_connections, self.config.ws_max_per_address)

    def _bind(self, addresses: Iterable[tuple[str, int]]) -> list[socket.socket]:
        """Listening sockets for uvicorn, bound before anything starts: a taken port raises
        `OSError` with nothing running and the store closed."""
        sockets: list[socket.socket] = []
        try:
            for host, port in addresses:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                sockets.append(socket.create_server((host, port), family=family, backlog=2048))
        except OSError:
            for sock in sockets:
                sock.close()
            self.store.close()
            raise
        return sockets

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM. `on_ready` is called once every listener (p2p too)
        is bound, so whatever it announces is already true."""
        ports = dict.fromkeys((self.config.rpc_port, self.config.ws_port))
        addresses = [(self.config.host, port) for port in ports]
        public = SecurityHeaders(
            BrowserGuard(self._durable_answers(self._http_app()), self.browser_policy),
            self.explorer_policy,
        )
        apps: list[ASGIApp] = [public] * len(addresses)
        contexts: list[ssl.SSLContext | None] = [self.tls_context] * len(addresses)
        if self.admin_token_file is not None and self.config.admin_port is not None:
            addresses.append((self.config.admin_host, self.config.admin_port))
            apps.append(
                SecurityHeaders(
                    self._durable_answers(
                        create_admin_app(
                            self.dispatcher,
                            self.admin_token_file,
                            self.subscriptions.drop_connection,
                        )
                    )
                )
            )
            contexts.append(None)
        sockets = self._bind(addresses)
        listeners = [
            _Listener(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    log_level="warning",
                    lifespan="off",
                    ws_max_size=16 * 1024 * 1024,
                    # X-Forwarded-For only from --api-trusted-proxies (uvicorn's default
                    # believes any loopback client, so a local caller could pick its address).
                    proxy_headers=bool(self.trusted_proxies),
                    forwarded_allow_ips=self.trusted_proxies or None,
                    ssl_context_factory=_serving(context) if context is not None else None,
                )
            )
            for app, (host, port), context in zip(apps, addresses, contexts, strict=True)
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
        if self.streams is not None:
            background.append(asyncio.create_task(self.streams.run(), name="streams"))
        background.append(asyncio.create_task(self.backfill.run(), name="internal-backfill"))
        servers = [
            asyncio.create_task(listener.serve(sockets=[sock]))
            for listener, sock in zip(listeners, sockets, strict=True)
        ]
        secure = "s" if self.tls_context is not None else ""
        log.info(
            "Tally node up: chain id %d, head #%d, %s 0x%s, JSON-RPC %s://%s:%d %s://%s:%d",
            self.chain.chain_id,
            self.chain.head.block_number,
            "validator" if self.is_validator else "member",
            self.address.hex(),
            "http" + secure,
            self.config.host,
            self.config.rpc_port,
            "ws" + secure,
            self.config.host,
            self.config.ws_port,
        )
        if on_ready is not None:
            on_ready()
        try:
            waiters = [asyncio.create_task(stop.wait()), *background, *servers]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiters[0] and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for listener in listeners:
                listener.should_exit = True
            self.call_pool.close()  # ends running calls, whose requests the listeners await
            self.prechecks.close()  # batches waiting on a worker are checked on the loop
            self.backfill.close()
            await asyncio.gather(*servers, return_exceptions=True)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self.p2p is not None:
                await self.p2p.stop()
            waiters[0].cancel()
            if self.journal is not None:
                await self.journal.close()
            self.store.close()
            log.info("Tally node stopped cleanly")
