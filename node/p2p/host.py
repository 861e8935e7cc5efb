"""The p2p host: listens, dials static peers, keeps one link per node, routes and gossips messages.

Everything runs on one asyncio loop and the peer table is touched only from it, so there are no
locks. The host knows nothing of transactions or blocks: the service subscribes handlers per
`MessageKind` and calls `send` / `broadcast` / `gossip` with opaque payloads.

Permissioning happens in three places: during the handshake (both ends, before any application
frame), when a finished handshake is registered (the list may have changed meanwhile), and in
`recheck_permissions`, which the service calls whenever the node list changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from node.p2p import handshake
from node.p2p.errors import FrameTooLarge, HandshakeError, HandshakeRefused, P2PError
from node.p2p.framing import MAX_FRAME_SIZE
from node.p2p.gossip import DEFAULT_SEEN_CACHE_SIZE, SeenCache
from node.p2p.messages import CONTROL_KINDS, GOSSIP_KINDS, message_digest
from node.p2p.peer import Direction, LinkSettings, Peer, PeerInfo
from node.signer import NodeSigner

logger = logging.getLogger(__name__)

Handler = Callable[[bytes, bytes], "bool | Awaitable[bool | None] | None"]
"""`handler(peer_address, payload)`; return False to stop a gossiped message being relayed."""
PeerListener = Callable[[Peer], None]


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: exponential from `initial`, capped at `cap`, with jitter.

    Jitter keeps nodes that lost each other at the same moment (a partition healing, a restart)
    from redialling in lock-step. `max_attempts` bounds how long a static peer is retried; None
    retries forever, which suits a permissioned network whose members are expected back.
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 2.0
    """Low because a permissioned network has few static peers, each expected back: with 30 s
    a healed partition waited up to 30 s for its links (issue 12 point 7); a redial every
    1-2 s of a node that is down costs one refused TCP connection."""
    jitter: float = 0.5
    max_attempts: int | None = None

    def delay(self, failures: int) -> float:
        """The wait after `failures` consecutive failures: within [(1 - jitter) * d, d]."""
        base = min(self.cap, self.initial * self.factor ** min(failures, 64))
        return base * (1.0 - self.jitter * random.random())


@dataclass(frozen=True)
class P2PConfig:
    """Limits and timings; the defaults suit a production network of tens of nodes."""

    handshake_timeout: float = handshake.DEFAULT_HANDSHAKE_TIMEOUT
    connect_timeout: float = 3.0
    max_frame_size: int = MAX_FRAME_SIZE
    send_queue_messages: int = 4096
    send_queue_bytes: int = 64 * 1024 * 1024
    ping_interval: float = 2.0
    idle_timeout: float = 8.0
    """A link silent this long is dropped and redialled. Short (geth: 15 s / 20 s) because a
    link cut by the network, not closed, otherwise lives on in TCP's retransmission backoff:
    after a 30 s partition the first retransmit came ~8-13 s after the heal, and the chain
    waited for it (14.6 s to the first block). Dropped, it is redialled and the rounds'
    messages re-sent within seconds of the heal."""
    write_timeout: float = 20.0
    max_peers: int = 64
    max_pending_handshakes: int = 32
    max_pending_handshakes_per_ip: int = 4
    """A new inbound connection beyond either limit evicts the oldest pending handshake (of
    its own IP first), so half-open sockets can delay but never lock out a peer whose
    handshake completes in a round trip (a flood kept a restarting validator at 0 peers)."""
    seen_cache_size: int = DEFAULT_SEEN_CACHE_SIZE
    stable_after: float = 10.0
    """A link that lived this long resets the reconnection backoff."""
    backoff: Backoff = field(default_factory=Backoff)
    gossip_kinds: frozenset[int] = GOSSIP_KINDS


@dataclass
class StaticPeer:
    """A peer the host keeps connected; `address` is learnt on the first handshake if not given."""

    host: str
    port: int
    address: bytes | None
    failures: int = 0
    last_error: str | None = None
    task: asyncio.Task[None] | None = None


class P2PHost:
    """Authenticated, encrypted links to the permissioned nodes, with gossip and reconnection."""

    def __init__(
        self,
        node_key: NodeSigner,
        listen_host: str,
        listen_port: int,
        chain_id: int,
        genesis_hash: bytes,
        allowed: Callable[[bytes], bool],
        config: P2PConfig | None = None,
    ) -> None:
        if len(genesis_hash) != 32:
            raise ValueError("genesis hash must be 32 bytes")
        self.node_key = node_key
        self.address: bytes = node_key.public_key.to_canonical_address()
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.network = handshake.NetworkIdentity(chain_id, genesis_hash)
        self.allowed = allowed
        self.config = config or P2PConfig()
        self.duplicates_dropped = 0
        self._settings = LinkSettings(
            max_frame_size=self.config.max_frame_size,
            send_queue_messages=self.config.send_queue_messages,
            send_queue_bytes=self.config.send_queue_bytes,
            ping_interval=self.config.ping_interval,
            idle_timeout=self.config.idle_timeout,
            write_timeout=self.config.write_timeout,
        )
        self._peers: dict[bytes, Peer] = {}
        self._handlers: dict[int, list[Handler]] = {}
        self._seen = SeenCache(self.config.seen_cache_size)
        self._static: list[StaticPeer] = []
        self._server: asyncio.Server | None = None
        self._handshakes: dict[asyncio.Task[object], tuple[str, asyncio.StreamWriter]] = {}
        """Pending inbound handshakes, oldest first, with their remote IP and socket."""
        self._closing_peers: set[Peer] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._connected_listeners: list[PeerListener] = []
        self._disconnected_listeners: list[PeerListener] = []
        self._started = False
        self._stopping = False

    # lifecycle

    async def start(self) -> None:
        """Listen on (listen_host, listen_port) and start keeping static peers connected.

        With port 0 the OS picks one; `listen_port` is updated to it.
        """
        if self._started:
            return
        self._started = True
        self._server = await asyncio.start_server(
            self._on_inbound, self.listen_host, self.listen_port
        )
        self.listen_port = self._server.sockets[0].getsockname()[1]
        logger.info(
            "p2p: node 0x%s listening on %s:%d",
            self.address.hex(),
            self.listen_host,
            self.listen_port,
        )
        for static in self._static:
            self._start_static(static)

    async def stop(self) -> None:
        """Stop listening and dialling, tell every peer we are leaving, and wait for the links."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        tasks = [s.task for s in self._static if s.task is not None] + list(self._handshakes)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in list(self._peers.values()):
            peer.close("shutting down")
        closing = list(self._closing_peers)
        if closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await asyncio.gather(*(peer.wait_closed() for peer in closing))
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # peers

    def connect(self, address_hint: bytes | None, host: str, port: int) -> StaticPeer:
        """Keep a static peer at host:port connected, redialling with backoff when it drops.

        `address_hint`, when given, must be the node's address: the handshake refuses anyone else
        at that endpoint, and no dial happens while a link to it (either direction) is up.
        """
        for static in self._static:
            if (static.host, static.port) == (host, port):
                if address_hint is not None:
                    static.address = address_hint
                return static
        static = StaticPeer(host, port, address_hint)
        self._static.append(static)
        if self._started and not self._stopping:
            self._start_static(static)
        return static

    async def dial(self, host: str, port: int, expected: bytes | None = None) -> Peer:
        """Dial once and handshake. Returns the peer, which may already be closing if it lost a
        duplicate tie-break; raises `HandshakeError`, `OSError` or `TimeoutError` on failure."""
        async with asyncio.timeout(self.config.connect_timeout):
            reader, writer = await asyncio.open_connection(host, port)
        try:
            session = await handshake.initiate(
                reader,
                writer,
                self.node_key,
                self.network,
                self.allowed,
                expected,
                self.config.handshake_timeout,
            )
        except BaseException:
            writer.close()
            raise
        peer = self._make_peer(session, reader, writer, Direction.OUTBOUND)
        self._register(peer)
        return peer

    def peer(self, address: bytes) -> Peer | None:
        return self._peers.get(address)

    def peers(self) -> list[PeerInfo]:
        """Connected peers, for `admin_peers`."""
        return [peer.info() for peer in self._peers.values()]

    @property
    def peer_count(self) -> int:
        """Connected peers, for `net_peerCount`."""
        return len(self._peers)

    def disconnect(self, address: bytes, reason: str = "disconnected") -> bool:
        peer = self._peers.get(address)
        if peer is None:
            return False
        peer.close(reason)
        return True

    def recheck_permissions(self) -> list[bytes]:
        """Close every link whose node is no longer allowed; returns their addresses.

        Call after the node list changes. Static peers keep being redialled, and the handshake
        refuses them until they are allowed again.
        """
        removed = [address for address in self._peers if not self.allowed(address)]
        for address in removed:
            self._peers[address].close("not on the node list")
        return removed

    def on_peer_connected(self, listener: PeerListener) -> None:
        """Call `listener(peer)` for each new link (e.g. to send STATUS)."""
        self._connected_listeners.append(listener)

    def on_peer_disconnected(self, listener: PeerListener) -> None:
        self._disconnected_listeners.append(listener)

    # messages

    def subscribe(self, kind: int, handler: Handler) -> Callable[[], None]:
        """Deliver messages of `kind` to `handler(peer_address, payload)`; returns an unsubscribe.

        For gossip kinds a handler returning False (e.g. an invalid transaction) stops the relay;
        an exception also stops it and is logged. Handlers of one peer run one at a time.
        """
        if kind in CONTROL_KINDS:
            raise ValueError(f"{kind!r} is handled by the link itself")
        handlers = self._handlers.setdefault(int(kind), [])
        handlers.append(handler)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                handlers.remove(handler)

        return unsubscribe

    def send(self, peer: bytes, kind: int, payload: bytes) -> bool:
        """Queue a message to one peer; False if not connected. Raises `FrameTooLarge`."""
        self._check_kind(kind)
        link = self._peers.get(peer)
        return link is not None and link.send(kind, payload)

    def broadcast(self, kind: int, payload: bytes, exclude: Iterable[bytes] = ()) -> int:
        """Queue a message to every peer not in `exclude`; returns how many accepted it."""
        self._check_kind(kind)
        excluded = set(exclude)
        if len(payload) + 1 > self.config.max_frame_size:
            raise FrameTooLarge(f"message of {len(payload) + 1} bytes > max frame size")
        return sum(
            1
            for address, peer in list(self._peers.items())
            if address not in excluded and peer.send(kind, payload)
        )

    def gossip(self, kind: int, payload: bytes, origin: bytes | None = None) -> bool:
        """Broadcast to everyone but `origin`, only the first time this message is seen.

        Returns False (and sends nothing) for a message already seen, whether it came from a
        peer or was gossiped locally before.
        """
        self._check_kind(kind)
        if not self._seen.add(message_digest(kind, payload)):
            self.duplicates_dropped += 1
            return False
        self.broadcast(kind, payload, exclude=() if origin is None else (origin,))
        return True

    # internals

    @staticmethod
    def _check_kind(kind: int) -> None:
        if kind in CONTROL_KINDS or not 0 <= kind <= 0xFF:
            raise ValueError(f"cannot send message kind {kind!r}")

    def _start_static(self, static: StaticPeer) -> None:
        static.task = asyncio.create_task(
            self._keep_connected(static), name=f"p2p-dial-{static.host}:{static.port}"
        )

    async def _keep_connected(self, static: StaticPeer) -> None:
        """Dial until connected, wait for the link to end, repeat, backing off on failure."""
        backoff = self.config.backoff
        while not self._stopping:
            current = self._peers.get(static.address) if static.address else None
            if current is not None:
                await current.wait_closed()
                lived = time.monotonic() - current.connected_monotonic
                static.failures = 0 if lived >= self.config.stable_after else static.failures + 1
            else:
                try:
                    peer = await self.dial(static.host, static.port, static.address)
                except (P2PError, OSError, TimeoutError) as error:
                    static.failures += 1
                    static.last_error = str(error) or type(error).__name__
                    if static.failures == 1 and isinstance(error, HandshakeRefused):
                        # Not a network blip: the peer said why (another genesis, not on its
                        # node list), which the operator must see without debug logging.
                        logger.warning(
                            "p2p: %s:%d refuses this node: %s",
                            static.host,
                            static.port,
                            static.last_error,
                        )
                    logger.debug(
                        "p2p: dial %s:%d failed (%d): %s",
                        static.host,
                        static.port,
                        static.failures,
                        static.last_error,
                    )
                    if backoff.max_attempts is not None and static.failures >= backoff.max_attempts:
                        logger.warning(
                            "p2p: giving up on %s:%d: %s",
                            static.host,
                            static.port,
                            static.last_error,
                        )
                        return
                else:
                    static.last_error = None
                    if static.address is None and any(
                        other.address == peer.address for other in self._static
                    ):
                        return  # the same node is already configured under another endpoint
                    static.address = peer.address
                    if not peer.is_closing:
                        continue  # wait on it at the top of the loop
                    static.failures += 1
            await asyncio.sleep(backoff.delay(max(static.failures - 1, 0)))

    async def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handshake an incoming connection; bounded so unauthenticated sockets cannot pile up."""
        task = asyncio.current_task()
        if self._stopping:
            writer.close()
            return
        assert task is not None
        peername = writer.get_extra_info("peername")
        ip = str(peername[0]) if isinstance(peername, tuple) and peername else "?"
        self._make_room_for_handshake(ip)
        self._handshakes[task] = (ip, writer)
        try:
            session = await handshake.respond(
                reader,
                writer,
                self.node_key,
                self.network,
                self.allowed,
                self.config.handshake_timeout,
            )
        except (HandshakeError, OSError) as error:
            logger.info("p2p: refused inbound %s: %s", writer.get_extra_info("peername"), error)
            writer.close()
            return
        except asyncio.CancelledError:
            writer.close()
            raise
        finally:
            self._handshakes.pop(task, None)
        self._register(self._make_peer(session, reader, writer, Direction.INBOUND))

    def _make_room_for_handshake(self, ip: str) -> None:
        """Close the oldest pending handshake from `ip` if it has its share of the slots, else
        the oldest of all if every slot is taken (its read then fails as a closed connection)."""
        same_ip = [task for task, (other, _) in self._handshakes.items() if other == ip]
        victim: asyncio.Task[object] | None = None
        if len(same_ip) >= max(1, self.config.max_pending_handshakes_per_ip):
            victim = same_ip[0]
        elif len(self._handshakes) >= max(1, self.config.max_pending_handshakes):
            victim = next(iter(self._handshakes))
        if victim is not None:
            _, writer = self._handshakes.pop(victim)
            writer.close()
            logger.debug("p2p: evicted a pending handshake from %s", ip)

    def _make_peer(
        self,
        session: handshake.SessionKeys,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Direction,
    ) -> Peer:
        return Peer(
            session,
            reader,
            writer,
            direction,
            self._settings,
            self._on_message,
            self._on_peer_closed,
        )

    def _initiator(self, peer: Peer) -> bytes:
        return self.address if peer.outbound else peer.address

    def _preferred(self, existing: Peer, new: Peer) -> Peer:
        """Which of two links to one node survives, decided alike at both ends.

        The link dialled by the lower address wins, so simultaneous dials converge on one link
        with no extra messages. Between links dialled by the same node, the newer wins: that
        node evidently restarted or lost the old link, which may linger here half-open.
        """
        lower = min(self.address, new.address)
        existing_ok = self._initiator(existing) == lower
        new_ok = self._initiator(new) == lower
        if existing_ok != new_ok:
            return existing if existing_ok else new
        return new

    def _register(self, peer: Peer) -> bool:
        """Admit a freshly authenticated link into the table, or close it."""
        if self._stopping:
            peer.close("shutting down")
            return False
        if not self.allowed(peer.address):
            peer.close("not on the node list")
            return False
        existing = self._peers.get(peer.address)
        if existing is not None:
            if self._preferred(existing, peer) is existing:
                peer.close("duplicate connection")
                return False
            self._peers[peer.address] = peer
            existing.close("duplicate connection")
        elif len(self._peers) >= self.config.max_peers:
            peer.close("too many peers")
            return False
        else:
            self._peers[peer.address] = peer
        logger.info(
            "p2p: connected to 0x%s (%s, %s)",
            peer.address.hex(),
            peer.direction.value,
            peer.remote_address,
        )
        peer.start()
        for listener in list(self._connected_listeners):
            self._call_listener(listener, peer)
        return True

    def _on_peer_closed(self, peer: Peer) -> None:
        self._closing_peers.add(peer)
        task = asyncio.create_task(self._forget_when_closed(peer))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if self._peers.get(peer.address) is peer:
            del self._peers[peer.address]
            for listener in list(self._disconnected_listeners):
                self._call_listener(listener, peer)

    async def _forget_when_closed(self, peer: Peer) -> None:
        await peer.wait_closed()
        self._closing_peers.discard(peer)

    @staticmethod
    def _call_listener(listener: PeerListener, peer: Peer) -> None:
        try:
            listener(peer)
        except Exception:
            logger.exception("p2p: peer listener failed")

    async def _on_message(self, peer: Peer, kind: int, payload: bytes) -> None:
        if kind not in self._handlers and kind not in self.config.gossip_kinds:
            logger.debug("p2p: ignoring message kind %d from 0x%s", kind, peer.address.hex())
            return
        if kind in self.config.gossip_kinds:
            if not self._seen.add(message_digest(kind, payload)):
                self.duplicates_dropped += 1
                return
            if await self._deliver(peer.address, kind, payload):
                self.broadcast(kind, payload, exclude=(peer.address,))
        else:
            await self._deliver(peer.address, kind, payload)

    async def _deliver(self, sender: bytes, kind: int, payload: bytes) -> bool:
        """Run the handlers; True unless one vetoed relaying (returned False or raised)."""
        relay = True
        for handler in list(self._handlers.get(kind, ())):
            try:
                result = handler(sender, payload)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                logger.exception("p2p: handler for kind %d failed", kind)
                relay = False
                continue
            if result is False:
                relay = False
        return relay
