"""Fuzzing a real node's p2p port: random and mutated handshakes, then frames on a real link.

A network of three nodes is made (one validator, two members); the validator and one member
run as processes with their link up, and the test plays the second member, whose node key it
holds. Before authentication it sends random bytes and mutated HELLO / AUTH messages; after a
real handshake it sends frames sealed with the link's keys whose payloads are random or
mutated encodings of every message kind (transactions, QBFT messages, STATUS, BLOCK_REQUEST,
BLOCKS, state diffs), and raw garbage frames. Every connection must end with the node closing
it (no hang, no crash), the other link must stay up and carry a transaction to finality, and
the node's log must hold no traceback. The pure frame and handshake decoders are fuzzed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rlp
from eth_keys.datatypes import PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import localnet
from node.consensus.sync import BlockRequest, Status
from node.keys import load_or_create_node_key
from node.p2p import handshake
from node.p2p.errors import HandshakeError, LinkError
from node.p2p.framing import HEADER_SIZE, FrameOpener, FrameSealer
from node.p2p.messages import MessageKind
from tests.conftest import DEV_MNEMONIC
from tests.test_fuzz_rlp import QBFT_MESSAGES, SEEDS, SIGNED_TXS, mutated

SLOW = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Target:
    """The running validator, the member linked to it, and the identity the test plays."""

    directory: Path
    validator: localnet.LocalNode
    member: localnet.LocalNode
    key: PrivateKey
    network: handshake.NetworkIdentity

    def log(self) -> str:
        return (self.directory / self.validator.name / "node.log").read_text()


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp("fuzzp2p")
    nodes = localnet.create(directory, validators=1, members=2)
    validator, member, played = nodes
    try:
        for node in (validator, member):
            localnet.start_node(directory, node)
        localnet.save(directory, nodes)
        _wait(lambda: localnet.rpc(member, "net_peerCount") == "0x1", 60, "the link")
        genesis = localnet.rpc(validator, "eth_getBlockByNumber", ["0x0", False])
        assert isinstance(genesis, dict)
        network = handshake.NetworkIdentity(1337, bytes.fromhex(genesis["hash"][2:]))
        key = load_or_create_node_key(directory / played.name)
        yield Target(directory, validator, member, key, network)
    finally:
        for node in (validator, member):
            localnet.stop_node(node)


async def _closed_by_node(reader: asyncio.StreamReader, timeout: float = 8.0) -> bool:
    """Read until the node closes the connection; False if it keeps it open past `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except OSError:
        pass  # a reset is a close too
    return True


def _valid_hello(target: Target) -> bytes:
    _, ephemeral = handshake.new_ephemeral()
    hello = handshake.Hello(
        handshake.PROTOCOL_VERSION,
        target.network.chain_id,
        target.network.genesis_hash,
        ephemeral,
        target.key.public_key.to_canonical_address(),
    ).encode()
    return len(hello).to_bytes(2, "big") + hello


@st.composite
def handshake_bytes(draw: st.DrawFn, hello: bytes) -> bytes:
    """What an unauthenticated stranger might send first: garbage, or a hello gone wrong."""
    choice = draw(st.sampled_from(["random", "framed-rlp", "mutated-hello", "hello+garbage"]))
    if choice == "random":
        return draw(st.binary(min_size=1, max_size=600))
    if choice == "framed-rlp":
        body = rlp.encode(draw(st.lists(st.binary(max_size=40), max_size=7)))
        return len(body).to_bytes(2, "big") + body
    data = bytearray(hello)
    if choice == "hello+garbage":
        auth = rlp.encode([handshake.HandshakeMessage.AUTH, draw(st.binary(max_size=70))])
        return bytes(data) + len(auth).to_bytes(2, "big") + auth
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        position = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[position] ^= draw(st.integers(min_value=1, max_value=255))
    return bytes(data)


@SLOW
@given(data=st.data())
def test_a_stranger_is_dropped_whatever_it_sends_before_authenticating(
    target: Target, data: st.DataObject
) -> None:
    first = data.draw(handshake_bytes(_valid_hello(target)))

    async def probe() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.validator.p2p_port)
        try:
            writer.write(first)
            await writer.drain()
            writer.write_eof()  # all it will ever say: the node must not wait for more
            return await _closed_by_node(reader)
        finally:
            writer.close()

    assert asyncio.run(probe())


payloads = st.one_of(
    st.tuples(st.just(MessageKind.TX), mutated().map(lambda raw: rlp.encode([raw]))),
    st.tuples(st.just(MessageKind.TX), st.lists(st.sampled_from(SIGNED_TXS)).map(rlp.encode)),
    st.tuples(st.just(MessageKind.CONSENSUS), st.sampled_from(QBFT_MESSAGES).map(
        lambda item: bytes([item[0]]) + item[1])),
    st.tuples(st.sampled_from(list(MessageKind)), mutated()),
    st.tuples(st.integers(min_value=0, max_value=255), st.binary(max_size=200)),
    st.tuples(st.just(MessageKind.STATUS), st.integers(0, 2**70).map(
        lambda n: rlp.encode(Status(n, b"\x01" * 32)))),
    st.tuples(st.just(MessageKind.BLOCK_REQUEST), st.tuples(
        st.integers(0, 2**70), st.integers(0, 2**70)).map(lambda r: rlp.encode(BlockRequest(*r)))),
)  # fmt: skip


@SLOW
@given(frames=st.lists(payloads, min_size=1, max_size=8), garbage=st.booleans())
def test_an_authenticated_peer_sending_junk_never_breaks_the_node(
    target: Target, frames: list[tuple[int, bytes]], garbage: bool
) -> None:
    async def session() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.validator.p2p_port)
        try:
            keys = await handshake.initiate(
                reader, writer, target.key, target.network, lambda address: True
            )
            sealer = FrameSealer(keys.send_key)
            for kind, payload in frames:
                if kind != MessageKind.DISCONNECT:
                    writer.write(sealer.seal(bytes([kind]) + payload))
            if garbage:  # a frame sealed under no key: the node must close the link
                writer.write((64).to_bytes(HEADER_SIZE, "big") + bytes(64))
                await writer.drain()
                assert await _closed_by_node(reader)
            else:
                await writer.drain()
                await asyncio.sleep(0.05)
        finally:
            writer.close()

    asyncio.run(session())


def test_the_node_survived_with_its_other_link_and_no_traceback(target: Target) -> None:
    """Runs after the fuzzing above: the member's link still carries a payment to finality."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    sender = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/7")
    nonce = int(str(localnet.rpc(target.member, "eth_getTransactionCount", [sender.address])), 16)
    raw = sender.sign_transaction(
        {
            "to": sender.address,
            "value": 1,
            "gas": 21000,
            "gasPrice": 0,
            "nonce": nonce,
            "chainId": 1337,
        }
    ).raw_transaction
    tx_hash = localnet.rpc(target.member, "eth_sendRawTransaction", ["0x" + raw.hex()])
    assert tx_hash, "the member refused a valid transaction"
    _wait(
        lambda: localnet.rpc(target.member, "eth_getTransactionReceipt", [tx_hash]) is not None,
        30,
        "the receipt on the member",
    )
    assert localnet.rpc(target.member, "net_peerCount") == "0x1"
    assert "Traceback" not in target.log()


@settings(max_examples=400, deadline=None, derandomize=True)
@given(header=st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE), body=st.binary(max_size=200))
def test_the_frame_decoder_raises_only_link_errors(header: bytes, body: bytes) -> None:
    opener = FrameOpener(bytes(32), max_frame_size=1024)
    try:
        opener.body_length(header)
        opener.open(header, body)
    except LinkError:
        pass


@settings(max_examples=400, deadline=None, derandomize=True)
@given(stream=st.one_of(st.binary(max_size=600), mutated().map(
    lambda body: len(body[:512]).to_bytes(2, "big") + body[:512])))  # fmt: skip
def test_the_handshake_reader_raises_only_handshake_errors(stream: bytes) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        kind, items, _ = await handshake.read_message(reader, 1.0)
        if kind is handshake.HandshakeMessage.HELLO:
            handshake.Hello.decode(items)

    with contextlib.suppress(HandshakeError):
        asyncio.run(read())


def test_seeds_cover_every_qbft_message() -> None:
    assert len(SEEDS) > len(QBFT_MESSAGES)
