"""P2P layer: real sockets on 127.0.0.1, real node keys, every host stopped by the test that
started it, every wait bounded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from eth_keys.datatypes import PrivateKey

from node.p2p import handshake
from node.p2p.allowlist import AllowList
from node.p2p.errors import (
    FrameAuthError,
    FrameTooLarge,
    HandshakeRefused,
    NonceExhausted,
    NotPermitted,
)
from node.p2p.framing import FrameOpener, FrameSealer
from node.p2p.gossip import SeenCache
from node.p2p.host import Backoff, P2PConfig, P2PHost
from node.p2p.messages import MessageKind
from node.p2p.peer import Direction

CHAIN_ID = 1337
GENESIS = bytes.fromhex("11" * 32)
LOCAL = "127.0.0.1"
FAST = P2PConfig(
    handshake_timeout=1.0,
    connect_timeout=1.0,
    backoff=Backoff(initial=0.05, cap=0.4),
)


def run(coroutine: Coroutine[Any, Any, None], timeout: float = 15.0) -> None:
    """Run one async test body with a hard bound, so a hang fails instead of stalling the suite."""

    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coroutine

    asyncio.run(bounded())


def new_key() -> PrivateKey:
    return PrivateKey(os.urandom(32))


def address_of(key: PrivateKey) -> bytes:
    return key.public_key.to_canonical_address()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def started(*hosts: P2PHost) -> AsyncIterator[tuple[P2PHost, ...]]:
    """Start hosts and stop every one of them however the test ends."""
    try:
        for host in hosts:
            await host.start()
        yield hosts
    finally:
        await asyncio.gather(*(host.stop() for host in hosts), return_exceptions=True)


def make_hosts(
    count: int, config: P2PConfig = FAST, **overrides: Any
) -> tuple[list[P2PHost], AllowList]:
    """`count` hosts that all allow each other (through one shared, mutable allow-list)."""
    node_keys = [new_key() for _ in range(count)]
    allowed = AllowList(address_of(key) for key in node_keys)
    hosts = [
        P2PHost(
            key,
            LOCAL,
            0,
            overrides.get("chain_id", CHAIN_ID),
            overrides.get("genesis_hash", GENESIS),
            allowed,
            config,
        )
        for key in node_keys
    ]
    return hosts, allowed


def recorder(host: P2PHost, kind: MessageKind) -> list[tuple[bytes, bytes]]:
    received: list[tuple[bytes, bytes]] = []
    host.subscribe(kind, lambda sender, payload: received.append((sender, payload)))
    return received


def link(a: P2PHost, b: P2PHost) -> None:
    """a keeps a static link to b."""
    a.connect(b.address, LOCAL, b.listen_port)


# framing and handshake pieces


def test_frames_roundtrip_and_reject_reflection_and_exhaustion() -> None:
    key_a, key_b = os.urandom(32), os.urandom(32)
    sealer, opener = FrameSealer(key_a), FrameOpener(key_a)
    for payload in (b"", b"x", os.urandom(5000)):
        frame = sealer.seal(payload)
        assert opener.open(frame[:4], frame[4:]) == payload
    wrong_direction = FrameOpener(key_b)
    frame = sealer.seal(b"hello")
    with pytest.raises(FrameAuthError):
        wrong_direction.open(frame[:4], frame[4:])
    limited = FrameSealer(key_a, limit=2)
    limited.seal(b"1")
    limited.seal(b"2")
    with pytest.raises(NonceExhausted):
        limited.seal(b"3")
    with pytest.raises(FrameTooLarge):
        FrameSealer(key_a, max_frame_size=10).seal(b"x" * 11)
    with pytest.raises(FrameTooLarge):
        FrameOpener(key_a, max_frame_size=10).body_length((11 + 16).to_bytes(4, "big"))


def test_seen_cache_is_bounded_lru() -> None:
    cache = SeenCache(2)
    assert cache.add(b"a") and cache.add(b"b")
    assert not cache.add(b"a")  # refreshes a
    assert cache.add(b"c")  # evicts b
    assert b"a" in cache and b"b" not in cache and len(cache) == 2


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, cap=8.0, jitter=0.5)
    for failures in range(200):
        delay = backoff.delay(failures)
        base = min(8.0, 0.5 * 2.0**failures)
        assert base / 2 <= delay <= base


# two and three hosts


def test_two_hosts_connect_and_exchange() -> None:
    async def body() -> None:
        (a, b), _ = make_hosts(2)
        async with started(a, b):
            at_a, at_b = recorder(a, MessageKind.STATUS), recorder(b, MessageKind.STATUS)
            link(a, b)
            await wait_until(lambda: a.peer_count == 1 and b.peer_count == 1, what="link")
            assert a.send(b.address, MessageKind.STATUS, b"from a")
            assert b.send(a.address, MessageKind.STATUS, b"from b")
            await wait_until(lambda: bool(at_a and at_b), what="messages")
            assert at_b == [(a.address, b"from a")]
            assert at_a == [(b.address, b"from b")]

            [info_a] = a.peers()
            [info_b] = b.peers()
            assert info_a.address == b.address and info_a.direction is Direction.OUTBOUND
            assert info_b.address == a.address and info_b.direction is Direction.INBOUND
            entry = info_b.as_json()
            assert entry["id"] == address_key_hex(a)
            assert entry["network"]["inbound"] is True
            assert entry["network"]["remoteAddress"].startswith("127.0.0.1:")
            assert abs(entry["connectedSince"] - time.time()) < 60

    run(body())


def address_key_hex(host: P2PHost) -> str:
    return host.node_key.public_key.to_bytes().hex()


def test_three_hosts_mesh_broadcast() -> None:
    async def body() -> None:
        hosts, _ = make_hosts(3)
        async with started(*hosts):
            boxes = [recorder(host, MessageKind.BLOCKS) for host in hosts]
            a, b, c = hosts
            link(a, b)
            link(a, c)
            link(b, c)
            await wait_until(lambda: all(h.peer_count == 2 for h in hosts), what="mesh")
            for host in hosts:
                assert host.broadcast(MessageKind.BLOCKS, host.address) == 2
            await wait_until(lambda: all(len(box) == 2 for box in boxes), what="broadcasts")
            for host, box in zip(hosts, boxes, strict=True):
                others = {h.address for h in hosts if h is not host}
                assert {sender for sender, _ in box} == others
                assert all(sender == payload for sender, payload in box)

    run(body())


# gossip


def test_gossip_reaches_line_exactly_once() -> None:
    async def body() -> None:
        hosts, _ = make_hosts(3)
        a, b, c = hosts
        async with started(*hosts):
            boxes = [recorder(host, MessageKind.TX) for host in hosts]
            link(a, b)
            link(b, c)
            await wait_until(
                lambda: (a.peer_count, b.peer_count, c.peer_count) == (1, 2, 1), what="line"
            )
            assert a.gossip(MessageKind.TX, b"tx-1")
            assert not a.gossip(MessageKind.TX, b"tx-1")  # already seen: nothing sent
            await wait_until(lambda: len(boxes[2]) == 1, what="tx-1 at C")
            assert c.gossip(MessageKind.TX, b"tx-2")
            await wait_until(lambda: len(boxes[0]) == 1, what="tx-2 at A")
            await asyncio.sleep(0.2)  # room for any duplicate to show up
            assert boxes[0] == [(b.address, b"tx-2")]
            assert boxes[1] == [(a.address, b"tx-1"), (c.address, b"tx-2")]
            assert boxes[2] == [(b.address, b"tx-1")]
            # B relaying back what it was given is suppressed at the far end only by dedup
            assert not b.gossip(MessageKind.TX, b"tx-1")

    run(body())


def test_gossip_in_triangle_delivers_once_and_drops_duplicates() -> None:
    async def body() -> None:
        hosts, _ = make_hosts(3)
        a, b, c = hosts
        async with started(*hosts):
            boxes = [recorder(host, MessageKind.CONSENSUS) for host in hosts]
            link(a, b)
            link(b, c)
            link(c, a)
            await wait_until(lambda: all(h.peer_count == 2 for h in hosts), what="triangle")
            for index in range(20):
                hosts[index % 3].gossip(MessageKind.CONSENSUS, f"msg-{index}".encode())
            await wait_until(
                lambda: sum(len(box) for box in boxes) == 40, what="all gossip delivered"
            )
            await asyncio.sleep(0.2)
            assert sum(len(box) for box in boxes) == 40
            for box in boxes:
                payloads = [payload for _, payload in box]
                assert len(payloads) == len(set(payloads))
            assert sum(h.duplicates_dropped for h in hosts) > 0

    run(body())


def test_handler_returning_false_stops_relay() -> None:
    async def body() -> None:
        hosts, _ = make_hosts(3)
        a, b, c = hosts
        async with started(*hosts):
            b.subscribe(MessageKind.TX, lambda sender, payload: payload != b"invalid")
            at_c = recorder(c, MessageKind.TX)
            link(a, b)
            link(b, c)
            await wait_until(lambda: b.peer_count == 2, what="line")
            a.gossip(MessageKind.TX, b"invalid")
            a.gossip(MessageKind.TX, b"valid")
            await wait_until(lambda: len(at_c) == 1, what="valid tx at C")
            await asyncio.sleep(0.1)
            assert at_c == [(b.address, b"valid")]

    run(body())


# permissioning


def test_unlisted_node_is_refused_before_it_sends_anything() -> None:
    async def body() -> None:
        (a, b), allowed = make_hosts(2)
        rogue_key = new_key()
        rogue = P2PHost(rogue_key, LOCAL, 0, CHAIN_ID, GENESIS, lambda _: True, FAST)
        async with started(a, b, rogue):
            at_b = recorder(b, MessageKind.TX)
            status_at_b = recorder(b, MessageKind.STATUS)

            # Through the API: refused with a reason, nothing registered on either side.
            with pytest.raises(HandshakeRefused, match="not on the node list"):
                await rogue.dial(LOCAL, b.listen_port)
            assert b.peer_count == 0 and rogue.peer_count == 0

            # On the wire, under its own identity: the first and only thing B says is REFUSE,
            # even though the rogue pipelines an auth and an "application frame" after its hello.
            reader, writer = await asyncio.open_connection(LOCAL, b.listen_port)
            _, public = handshake.new_ephemeral()
            hello = handshake.Hello(
                handshake.PROTOCOL_VERSION, CHAIN_ID, GENESIS, public, address_of(rogue_key)
            ).encode()
            await handshake.write_message(writer, hello)
            await handshake.write_message(writer, handshake.encode_auth(b"\x00" * 65))
            writer.write(b"\x00\x00\x00\x20" + os.urandom(32))
            await writer.drain()
            with pytest.raises(HandshakeRefused, match="not on the node list"):
                await handshake.read_message(reader, 2.0)
            assert await asyncio.wait_for(reader.read(), 2.0) == b""
            writer.close()

            # Impersonating a listed node (A) without its key: the rogue completes the key
            # exchange and sends a correctly encrypted TX, which B never delivers.
            reader, writer = await asyncio.open_connection(LOCAL, b.listen_port)
            ephemeral, public = handshake.new_ephemeral()
            hello = handshake.Hello(
                handshake.PROTOCOL_VERSION, CHAIN_ID, GENESIS, public, a.address
            ).encode()
            await handshake.write_message(writer, hello)
            kind, items, remote_bytes = await handshake.read_message(reader, 2.0)
            assert kind is handshake.HandshakeMessage.HELLO
            remote = handshake.Hello.decode(items)
            transcript = handshake.transcript_hash(hello, remote_bytes)
            signature = handshake.sign_transcript(
                rogue_key, handshake.PeerRole.INITIATOR, transcript
            )
            to_responder, _ = handshake.derive_keys(
                handshake.shared_secret(ephemeral, remote.ephemeral_public), transcript
            )
            await handshake.write_message(writer, handshake.encode_auth(signature))
            sealer = FrameSealer(to_responder)
            writer.write(sealer.seal(bytes([MessageKind.TX]) + b"forged tx"))
            writer.write(sealer.seal(bytes([MessageKind.STATUS]) + b"forged status"))
            await writer.drain()
            with pytest.raises(HandshakeRefused, match="signature"):
                await handshake.read_message(reader, 2.0)
            assert await asyncio.wait_for(reader.read(), 2.0) == b""
            writer.close()

            await asyncio.sleep(0.1)
            assert at_b == [] and status_at_b == []
            assert b.peer_count == 0

            # The genuine A still gets in.
            assert (await a.dial(LOCAL, b.listen_port)).address == b.address
            await wait_until(lambda: b.peer_count == 1, what="A admitted")
            assert allowed(a.address)

    run(body())


def test_dialer_refuses_a_responder_other_than_the_one_it_meant() -> None:
    async def body() -> None:
        (a, b, c), _ = make_hosts(3)
        async with started(a, b, c):
            with pytest.raises(NotPermitted, match="dialled"):
                await a.dial(LOCAL, b.listen_port, expected=c.address)
            await asyncio.sleep(0.05)
            assert a.peer_count == 0 and b.peer_count == 0

    run(body())


def test_removed_node_is_disconnected_by_recheck() -> None:
    async def body() -> None:
        hosts, allowed = make_hosts(3)
        a, b, c = hosts
        async with started(*hosts):
            link(a, b)
            link(a, c)
            link(c, b)
            await wait_until(lambda: all(h.peer_count == 2 for h in hosts), what="mesh")
            allowed.remove(c.address)
            assert a.recheck_permissions() == [c.address]
            assert b.recheck_permissions() == [c.address]
            assert a.peer_count == 1 and b.peer_count == 1
            await wait_until(lambda: c.peer_count == 0, what="C dropped")
            await asyncio.sleep(0.5)  # C's static dialling keeps being refused
            assert c.peer_count == 0 and a.peer(c.address) is None
            assert a.peer(b.address) is not None

            allowed.add(c.address)  # re-admitted: its static link comes back by itself
            await wait_until(lambda: c.peer_count == 2, what="C back")

    run(body())


def test_wrong_chain_id_or_genesis_is_refused() -> None:
    async def body() -> None:
        (a,), _ = make_hosts(1)
        other_chain = P2PHost(new_key(), LOCAL, 0, CHAIN_ID + 1, GENESIS, lambda _: True, FAST)
        other_genesis = P2PHost(new_key(), LOCAL, 0, CHAIN_ID, b"\x22" * 32, lambda _: True, FAST)
        async with started(a, other_chain, other_genesis):
            with pytest.raises(HandshakeRefused, match="chain id"):
                await a.dial(LOCAL, other_chain.listen_port)
            with pytest.raises(HandshakeRefused, match="genesis"):
                await a.dial(LOCAL, other_genesis.listen_port)
            assert a.peer_count == other_chain.peer_count == other_genesis.peer_count == 0

    run(body())


def test_silent_connection_is_dropped_after_handshake_timeout() -> None:
    async def body() -> None:
        config = P2PConfig(handshake_timeout=0.2)
        (a,), _ = make_hosts(1, config)
        async with started(a):
            reader, writer = await asyncio.open_connection(LOCAL, a.listen_port)
            assert await asyncio.wait_for(reader.read(), 2.0) == b""
            writer.close()

    run(body())


# tampering on the wire


Mangle = Callable[[list[bytes]], list[bytes]]


def _flip_last_byte(frames: list[bytes]) -> list[bytes]:
    frame = frames[-1]
    return [*frames[:-1], frame[:-1] + bytes([frame[-1] ^ 1])]


def _replay(frames: list[bytes]) -> list[bytes]:
    return [*frames, frames[-1]]


def _reorder(frames: list[bytes]) -> list[bytes]:
    return list(reversed(frames))


@pytest.mark.parametrize(
    ("mangle", "delivered"),
    [(_flip_last_byte, [b"one"]), (_replay, [b"one", b"two"]), (_reorder, [])],
    ids=["tampered", "replayed", "reordered"],
)
def test_altered_frames_close_the_link(mangle: Mangle, delivered: list[bytes]) -> None:
    async def body() -> None:
        (a, b), _ = make_hosts(2)
        async with started(a, b):
            at_b = recorder(b, MessageKind.STATUS)
            await a.dial(LOCAL, b.listen_port)
            await wait_until(lambda: b.peer_count == 1, what="link")
            b_side = b.peer(a.address)
            a_side = a.peer(b.address)
            assert b_side is not None and a_side is not None

            # Intercept the raw socket writes of A's link: hold two frames, then mangle them.
            held: list[bytes] = []
            original_write = a_side.writer.write

            def intercept(data: bytes | bytearray | memoryview) -> None:
                held.append(bytes(data))
                if len(held) == 2:
                    for frame in mangle(held):
                        original_write(frame)

            a_side.writer.write = intercept  # type: ignore[method-assign]
            a.send(b.address, MessageKind.STATUS, b"one")
            a.send(b.address, MessageKind.STATUS, b"two")
            await asyncio.wait_for(b_side.wait_closed(), 3.0)
            assert b_side.close_reason == "frame failed authentication"
            assert [payload for _, payload in at_b] == delivered
            await wait_until(lambda: a.peer_count == 0 and b.peer_count == 0, what="closed")

    run(body())


# sizes and backpressure


def test_messages_above_max_size_are_refused() -> None:
    async def body() -> None:
        (a,), allowed = make_hosts(1)
        small_key = new_key()
        allowed.add(address_of(small_key))
        small = P2PHost(
            small_key, LOCAL, 0, CHAIN_ID, GENESIS, allowed, P2PConfig(max_frame_size=1024)
        )
        async with started(a, small):
            at_small = recorder(small, MessageKind.BLOCKS)
            await a.dial(LOCAL, small.listen_port)
            await wait_until(lambda: small.peer_count == 1, what="link")
            # The sender refuses what its own limit cannot carry, before queueing anything.
            with pytest.raises(FrameTooLarge):
                a.send(small.address, MessageKind.BLOCKS, b"x" * a.config.max_frame_size)
            with pytest.raises(FrameTooLarge):
                small.broadcast(MessageKind.BLOCKS, b"x" * 1024)
            # The receiver refuses a frame above its limit from its header, and closes.
            link_at_small = small.peer(a.address)
            assert link_at_small is not None
            a.send(small.address, MessageKind.BLOCKS, b"fits")
            a.send(small.address, MessageKind.BLOCKS, b"x" * 2000)
            await asyncio.wait_for(link_at_small.wait_closed(), 3.0)
            assert "2001 bytes > 1024" in (link_at_small.close_reason or "")
            assert at_small == [(a.address, b"fits")]
            await wait_until(lambda: a.peer_count == 0, what="A told")

    run(body())


def test_peer_that_cannot_keep_up_is_dropped() -> None:
    async def body() -> None:
        (a, b), _ = make_hosts(2, P2PConfig(send_queue_messages=8))
        async with started(a, b):
            await a.dial(LOCAL, b.listen_port)
            await wait_until(lambda: b.peer_count == 1, what="link")
            link_at_a = a.peer(b.address)
            assert link_at_a is not None
            sent = [a.send(b.address, MessageKind.TX, bytes([i])) for i in range(20)]
            assert sent[:8] == [True] * 8 and not any(sent[8:])
            assert link_at_a.close_reason == "send queue full: peer cannot keep up"
            assert a.peer_count == 0

    run(body())


# reconnection and duplicate links


def test_reconnects_after_remote_restart() -> None:
    async def body() -> None:
        (a, b), allowed = make_hosts(2)
        async with started(a, b):
            static = a.connect(b.address, LOCAL, b.listen_port)
            await wait_until(lambda: a.peer_count == 1, what="first link")
            port = b.listen_port
            await b.stop()
            await wait_until(lambda: a.peer_count == 0, what="link lost")
            await wait_until(lambda: static.failures >= 2, what="redials failing")
            assert static.last_error
            restarted = P2PHost(b.node_key, LOCAL, port, CHAIN_ID, GENESIS, allowed, FAST)
            async with started(restarted):
                await wait_until(lambda: a.peer_count == 1, what="relinked")
                await wait_until(lambda: restarted.peer_count == 1, what="relinked at B")
                at_b = recorder(restarted, MessageKind.STATUS)
                assert a.send(b.address, MessageKind.STATUS, b"hello again")
                await wait_until(lambda: at_b == [(a.address, b"hello again")], what="msg")

    run(body())


def test_simultaneous_connects_end_with_one_link() -> None:
    async def one_round() -> None:
        (a, b), _ = make_hosts(2)
        async with started(a, b):
            lower, higher = sorted((a, b), key=lambda host: host.address)
            # Both dial at once, and then both keep static links to each other.
            results = await asyncio.gather(
                a.dial(LOCAL, b.listen_port), b.dial(LOCAL, a.listen_port), return_exceptions=True
            )
            assert not [r for r in results if isinstance(r, BaseException)]
            link(a, b)
            link(b, a)
            await wait_until(lambda: a.peer_count == 1 and b.peer_count == 1, what="one link")
            await asyncio.sleep(0.3)  # no flapping afterwards
            [at_lower] = lower.peers()
            [at_higher] = higher.peers()
            assert at_lower.direction is Direction.OUTBOUND  # the lower address's dial won
            assert at_higher.direction is Direction.INBOUND
            assert at_lower.local_address == at_higher.remote_address
            box = recorder(higher, MessageKind.STATUS)
            lower.send(higher.address, MessageKind.STATUS, b"ok")
            await wait_until(lambda: box == [(lower.address, b"ok")], what="message")

    async def body() -> None:
        for _ in range(3):
            await one_round()

    run(body())


def test_stop_closes_links_and_notifies_peers() -> None:
    async def body() -> None:
        (a, b), _ = make_hosts(2)
        async with started(a, b):
            await a.dial(LOCAL, b.listen_port)
            await wait_until(lambda: b.peer_count == 1, what="link")
            link_at_b = b.peer(a.address)
            assert link_at_b is not None
            await a.stop()
            await asyncio.wait_for(link_at_b.wait_closed(), 2.0)
            assert link_at_b.close_reason == "remote disconnected: shutting down"

    run(body())
