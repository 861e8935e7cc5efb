"""A mutually authenticated key exchange bound to node keys (SIGMA-I style, signed ephemeral DH).

Why not TLS: a Tally node's identity is the address of its secp256k1 node key, and the node list
holds addresses. TLS would need certificates that carry (or are signed by) that key and a custom
verifier; a small handshake that signs the transcript with the node key itself binds the link to
the identity the permission check is about, with no certificate layer to get wrong.

Messages (each a 2-byte big-endian length and an RLP list, at most `MAX_HANDSHAKE_MESSAGE`):

```
HELLO  = [1, version, chain_id, genesis_hash(32), x25519_public(32), address(20)]
AUTH   = [2, signature(65)]        node-key signature, r || s || v
REFUSE = [3, reason(utf-8)]        then the sender closes
```

Flow (I = initiator / dialler, R = responder / listener):

```
I -> R  HELLO_I
        R: version, chain id, genesis hash match; allowed(HELLO_I.address); not itself.
           Anything wrong: REFUSE and close. Nothing else is ever sent to that peer.
R -> I  HELLO_R
        I: same network checks; allowed(HELLO_R.address); equals the address it dialled (if known).
I -> R  AUTH_I = sign_I(keccak(LABEL || "initiator" || T))     T = keccak(rlp([HELLO_I, HELLO_R]))
        R: recovered address == HELLO_I.address (and still allowed), else REFUSE and close.
R -> I  AUTH_R = sign_R(keccak(LABEL || "responder" || T))
        I: recovered address == HELLO_R.address, else close.
keys:   HKDF-SHA256(ikm = X25519(eph_I, eph_R), salt = T, info = LABEL || "keys") -> 64 bytes,
        first 32 encrypt initiator -> responder, last 32 responder -> initiator.
```

Soundness in brief: each signature covers both fresh ephemeral keys and both identities, so it is
useless outside this one session (no replay, no identity misbinding), and the role label stops a
signature being reflected back as the other role. A man in the middle who substitutes either
ephemeral key breaks the transcript and so the signature; one who relays unchanged never learns
the X25519 secret, so he can only forward ciphertext. The responder refuses an unlisted claimed
address before sending its hello, and a listed address claimed without its key fails at AUTH_I,
before the responder signs anything or accepts a single application frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

import rlp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_hash.auto import keccak
from eth_keys.datatypes import PublicKey, Signature
from eth_keys.exceptions import BadSignature, ValidationError

from node.p2p.errors import (
    BadHandshake,
    HandshakeRefused,
    HandshakeTimeout,
    NetworkMismatch,
    NotPermitted,
)
from node.signer import NodeSigner

PROTOCOL_VERSION = 1
LABEL = b"tally-p2p/1 "
MAX_HANDSHAKE_MESSAGE = 512
MAX_REASON = 200
DEFAULT_HANDSHAKE_TIMEOUT = 5.0

Allowed = Callable[[bytes], bool]
"""Whether an address (20 bytes) is on the permissioned node list right now."""


class HandshakeMessage(IntEnum):
    """First item of every handshake message."""

    HELLO = 1
    AUTH = 2
    REFUSE = 3


class PeerRole(IntEnum):
    """Which end of the connection a node is; part of what each side signs."""

    INITIATOR = 0
    RESPONDER = 1

    @property
    def label(self) -> bytes:
        return b"initiator" if self is PeerRole.INITIATOR else b"responder"


@dataclass(frozen=True)
class Hello:
    """A node's opening message: which network it is on, its key share and its claimed identity."""

    version: int
    chain_id: int
    genesis_hash: bytes
    ephemeral_public: bytes
    address: bytes

    def encode(self) -> bytes:
        return rlp.encode(
            [
                HandshakeMessage.HELLO,
                self.version,
                self.chain_id,
                self.genesis_hash,
                self.ephemeral_public,
                self.address,
            ]
        )

    @classmethod
    def decode(cls, items: list[object]) -> Hello:
        fields = items[1:]
        if len(items) != 6 or not all(isinstance(field, bytes) for field in fields):
            raise BadHandshake("malformed hello")
        version, chain_id, genesis, ephemeral, address = (cast(bytes, f) for f in fields)
        if len(genesis) != 32 or len(ephemeral) != 32 or len(address) != 20:
            raise BadHandshake("malformed hello")
        if len(version) > 4 or len(chain_id) > 32:
            raise BadHandshake("malformed hello")
        return cls(
            int.from_bytes(version, "big"),
            int.from_bytes(chain_id, "big"),
            genesis,
            ephemeral,
            address,
        )


@dataclass(frozen=True)
class SessionKeys:
    """What a successful handshake yields: who the peer provably is, and the traffic keys."""

    remote_address: bytes
    remote_public_key: PublicKey
    send_key: bytes
    recv_key: bytes
    role: PeerRole
    transcript_hash: bytes


@dataclass(frozen=True)
class NetworkIdentity:
    """What both ends must share to talk: the chain id and the genesis block hash."""

    chain_id: int
    genesis_hash: bytes


def transcript_hash(initiator_hello: bytes, responder_hello: bytes) -> bytes:
    """Hash both hellos exactly as sent, in initiator/responder order, so each side hashes alike."""
    return keccak(rlp.encode([initiator_hello, responder_hello]))


def auth_digest(role: PeerRole, transcript: bytes) -> bytes:
    """The 32-byte digest a node signs; the role label stops reflection of one side's signature."""
    return keccak(LABEL + role.label + transcript)


def sign_transcript(node_key: NodeSigner, role: PeerRole, transcript: bytes) -> bytes:
    """Sign the transcript with the node key: this is what proves the claimed address."""
    return node_key.sign_msg_hash(auth_digest(role, transcript)).to_bytes()


def recover_signer(signature: bytes, role: PeerRole, transcript: bytes) -> PublicKey:
    """Recover the node key that signed the transcript in the given role."""
    try:
        return Signature(signature_bytes=signature).recover_public_key_from_msg_hash(
            auth_digest(role, transcript)
        )
    except (BadSignature, ValidationError, ValueError) as error:
        raise BadHandshake("invalid signature") from error


def derive_keys(shared_secret: bytes, transcript: bytes) -> tuple[bytes, bytes]:
    """Derive (initiator->responder, responder->initiator) keys, salted by the transcript hash.

    Salting with the transcript ties the keys to this exact exchange, and two directional keys
    mean a frame can never be reflected back to its sender as if the other side wrote it.
    """
    material = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=transcript, info=LABEL + b"keys"
    ).derive(shared_secret)
    return material[:32], material[32:]


def new_ephemeral() -> tuple[X25519PrivateKey, bytes]:
    """A fresh X25519 key pair for one handshake (forward secrecy: never stored)."""
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return private, public


def shared_secret(private: X25519PrivateKey, remote_public: bytes) -> bytes:
    """X25519 with the peer's share; low-order shares (all-zero secret) are refused."""
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(remote_public))
    except ValueError as error:
        raise BadHandshake("invalid key share") from error


def encode_auth(signature: bytes) -> bytes:
    return rlp.encode([HandshakeMessage.AUTH, signature])


def encode_refuse(reason: str) -> bytes:
    return rlp.encode([HandshakeMessage.REFUSE, reason.encode()[:MAX_REASON]])


async def write_message(writer: asyncio.StreamWriter, body: bytes) -> None:
    """Write one length-prefixed handshake message."""
    writer.write(len(body).to_bytes(2, "big") + body)
    await writer.drain()


async def read_message(
    reader: asyncio.StreamReader, timeout: float
) -> tuple[HandshakeMessage, list[object], bytes]:
    """Read one handshake message within `timeout`; a REFUSE raises `HandshakeRefused`.

    Returns (kind, decoded items, raw body); the raw body is what the transcript hashes.
    """
    try:
        async with asyncio.timeout(timeout):
            length = int.from_bytes(await reader.readexactly(2), "big")
            if length == 0 or length > MAX_HANDSHAKE_MESSAGE:
                raise BadHandshake(f"handshake message of {length} bytes")
            body = await reader.readexactly(length)
    except TimeoutError as error:
        raise HandshakeTimeout("handshake read timed out") from error
    except asyncio.IncompleteReadError as error:
        raise BadHandshake("connection closed during handshake") from error
    try:
        items = rlp.decode(body)
    except rlp.exceptions.DecodingError as error:
        raise BadHandshake("undecodable handshake message") from error
    if not isinstance(items, list) or not items or not isinstance(items[0], bytes):
        raise BadHandshake("malformed handshake message")
    try:
        kind = HandshakeMessage(int.from_bytes(items[0], "big"))
    except ValueError as error:
        raise BadHandshake("unknown handshake message") from error
    if kind is HandshakeMessage.REFUSE:
        reason = items[1] if len(items) == 2 and isinstance(items[1], bytes) else b"?"
        raise HandshakeRefused(reason[:MAX_REASON].decode(errors="replace"))
    return kind, items, body


def _expect(kind: HandshakeMessage, wanted: HandshakeMessage) -> None:
    if kind is not wanted:
        raise BadHandshake(f"expected {wanted.name}, got {kind.name}")


def _check_network(hello: Hello, network: NetworkIdentity) -> None:
    if hello.version != PROTOCOL_VERSION:
        raise NetworkMismatch(f"protocol version {hello.version}, expected {PROTOCOL_VERSION}")
    if hello.chain_id != network.chain_id:
        raise NetworkMismatch(f"chain id {hello.chain_id}, expected {network.chain_id}")
    if hello.genesis_hash != network.genesis_hash:
        raise NetworkMismatch(f"genesis hash 0x{hello.genesis_hash.hex()} differs")


def _decode_auth(items: list[object]) -> bytes:
    if len(items) != 2 or not isinstance(items[1], bytes) or len(items[1]) != 65:
        raise BadHandshake("malformed auth")
    return items[1]


async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
    """Tell the remote why, best effort, so operators see the cause on both ends."""
    try:
        async with asyncio.timeout(1.0):
            await write_message(writer, encode_refuse(reason))
    except (OSError, TimeoutError):
        pass


async def initiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    node_key: NodeSigner,
    network: NetworkIdentity,
    allowed: Allowed,
    expected_address: bytes | None = None,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
) -> SessionKeys:
    """Run the initiator side. Raises a `HandshakeError`; the caller closes the connection."""
    own_address = node_key.public_key.to_canonical_address()
    ephemeral, ephemeral_public = new_ephemeral()
    hello = Hello(
        PROTOCOL_VERSION, network.chain_id, network.genesis_hash, ephemeral_public, own_address
    )
    hello_bytes = hello.encode()
    await write_message(writer, hello_bytes)

    kind, items, remote_bytes = await read_message(reader, timeout)
    _expect(kind, HandshakeMessage.HELLO)
    remote = Hello.decode(items)
    try:
        _check_network(remote, network)
        if expected_address is not None and remote.address != expected_address:
            raise NotPermitted(
                f"dialled 0x{expected_address.hex()}, reached 0x{remote.address.hex()}"
            )
        if remote.address == own_address:
            raise NotPermitted("connected to self")
        if not allowed(remote.address):
            raise NotPermitted(f"0x{remote.address.hex()} is not on the node list")
    except (NetworkMismatch, NotPermitted) as error:
        await _refuse(writer, str(error))
        raise

    transcript = transcript_hash(hello_bytes, remote_bytes)
    secret = shared_secret(ephemeral, remote.ephemeral_public)
    await write_message(
        writer, encode_auth(sign_transcript(node_key, PeerRole.INITIATOR, transcript))
    )

    kind, items, _ = await read_message(reader, timeout)
    _expect(kind, HandshakeMessage.AUTH)
    public_key = recover_signer(_decode_auth(items), PeerRole.RESPONDER, transcript)
    if public_key.to_canonical_address() != remote.address:
        raise BadHandshake("responder signature does not match its address")
    to_responder, to_initiator = derive_keys(secret, transcript)
    return SessionKeys(
        remote.address, public_key, to_responder, to_initiator, PeerRole.INITIATOR, transcript
    )


async def respond(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    node_key: NodeSigner,
    network: NetworkIdentity,
    allowed: Allowed,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
) -> SessionKeys:
    """Run the responder side. The initiator's claimed address is checked against the node list
    before anything is sent, and its signature before our own signature is sent."""
    own_address = node_key.public_key.to_canonical_address()
    kind, items, remote_bytes = await read_message(reader, timeout)
    _expect(kind, HandshakeMessage.HELLO)
    remote = Hello.decode(items)
    try:
        _check_network(remote, network)
        if remote.address == own_address:
            raise NotPermitted("connected to self")
        if not allowed(remote.address):
            raise NotPermitted(f"0x{remote.address.hex()} is not on the node list")
    except (NetworkMismatch, NotPermitted) as error:
        await _refuse(writer, str(error))
        raise

    ephemeral, ephemeral_public = new_ephemeral()
    hello_bytes = Hello(
        PROTOCOL_VERSION, network.chain_id, network.genesis_hash, ephemeral_public, own_address
    ).encode()
    secret = shared_secret(ephemeral, remote.ephemeral_public)
    await write_message(writer, hello_bytes)
    transcript = transcript_hash(remote_bytes, hello_bytes)

    kind, items, _ = await read_message(reader, timeout)
    _expect(kind, HandshakeMessage.AUTH)
    public_key = recover_signer(_decode_auth(items), PeerRole.INITIATOR, transcript)
    if public_key.to_canonical_address() != remote.address:
        await _refuse(writer, "signature does not match the claimed address")
        raise BadHandshake("initiator signature does not match its address")
    if not allowed(remote.address):  # the list may have changed while we waited
        await _refuse(writer, "not on the node list")
        raise NotPermitted(f"0x{remote.address.hex()} is not on the node list")
    await write_message(
        writer, encode_auth(sign_transcript(node_key, PeerRole.RESPONDER, transcript))
    )
    to_responder, to_initiator = derive_keys(secret, transcript)
    return SessionKeys(
        remote.address, public_key, to_initiator, to_responder, PeerRole.RESPONDER, transcript
    )
