"""QBFT wire messages (shared/QBFT.md §2): payloads, signatures and the four codecs.

Every message is built from signed payloads `[payload, sig65]`, where the signature is a raw
recoverable secp256k1 signature over `keccak(rlp([msgCode, payload]))` and the author is the
address recovered from it. Decoding recovers authors eagerly: a message object always knows
who signed it, so the state machine never handles an unauthenticated payload. Signed payloads
keep the exact RLP items they were signed over, so a payload decoded from a newer Besu (which
may append a block-access-list item) still verifies and re-encodes byte for byte.

Blocks travel as standard Ethereum block RLP `[header, transactions, uncles, withdrawals]`;
typed transactions are byte strings of their EIP-2718 form inside the list, legacy ones are
nested lists, as in `eth` block bodies. Turning a header's items and a transaction's bytes
into objects is the caller's `BlockCodec` (`node.consensus.block_codec` for py-evm's): this
module, like the whole QBFT core, imports no EVM.

Every malformed input raises `MessageError` (a `ValueError`), whatever layer noticed it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.exceptions import BadSignature

from node.signer import NodeSigner

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import BlockHeaderAPI, SignedTransactionAPI

PROPOSAL = 0x12
PREPARE = 0x13
COMMIT = 0x14
ROUND_CHANGE = 0x15
MESSAGE_CODES = (PROPOSAL, PREPARE, COMMIT, ROUND_CHANGE)

SIGNATURE_LENGTH = 65
HASH_LENGTH = 32
# secp256k1 group order; signatures with s above half of it are malleable twins (EIP-2).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2

RawItem = bytes | list[Any]


class MessageError(ValueError):
    """A consensus message that cannot be decoded or whose signature does not verify."""


# ---------------------------------------------------------------------------------------------
# Scalars


def _int(item: RawItem, what: str) -> int:
    """An RLP scalar: bytes without leading zeros (Besu's `writeIntScalar` / `readIntScalar`)."""
    if not isinstance(item, bytes):
        raise MessageError(f"{what} must be an RLP string")
    if item[:1] == b"\x00":
        raise MessageError(f"{what} has leading zero bytes")
    if len(item) > 8:
        raise MessageError(f"{what} does not fit 64 bits")
    return int.from_bytes(item, "big")


def _bytes(item: RawItem, length: int, what: str) -> bytes:
    if not isinstance(item, bytes) or len(item) != length:
        raise MessageError(f"{what} must be {length} bytes")
    return item


def _list(item: RawItem, what: str, lengths: Sequence[int] | None = None) -> list[Any]:
    if not isinstance(item, list):
        raise MessageError(f"{what} must be an RLP list")
    if lengths is not None and len(item) not in lengths:
        raise MessageError(f"{what} must have {' or '.join(map(str, lengths))} items")
    return item


def _decode_rlp(data: bytes, what: str) -> RawItem:
    try:
        return rlp.decode(data)
    except rlp.DecodingError as exc:
        raise MessageError(f"{what} is not RLP: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Blocks


class BlockCodec(Protocol):
    """How a block's header and transactions become objects (the edge supplies py-evm's)."""

    def decode_header(self, items: list[Any]) -> BlockHeaderAPI:
        """The header from its RLP items; may raise `rlp.DeserializationError`."""
        ...

    def decode_transaction(self, raw: bytes) -> SignedTransactionAPI:
        """A transaction from its canonical encoding (EIP-2718 form or legacy RLP list)."""
        ...


@dataclass(frozen=True)
class QbftBlock:
    """A block as consensus carries it: a Prague header and its decoded transactions.

    Uncles and withdrawals are always empty on a QBFT chain, so they are not fields; decoding
    rejects blocks that carry any.
    """

    header: BlockHeaderAPI
    transactions: tuple[SignedTransactionAPI, ...] = ()

    @property
    def number(self) -> int:
        return self.header.block_number

    def to_rlp(self) -> list[Any]:
        """The block as RLP items, legacy transactions as lists and typed ones as strings."""
        return [
            self.header,
            [tx if tx.type_id is None else tx.encode() for tx in self.transactions],
            [],
            [],
        ]

    def encode(self) -> bytes:
        return rlp.encode(self.to_rlp())

    def with_header(self, header: BlockHeaderAPI) -> QbftBlock:
        return QbftBlock(header, self.transactions)

    @classmethod
    def from_rlp(cls, item: RawItem, codec: BlockCodec) -> QbftBlock:
        header_item, tx_items, uncles, withdrawals = _list(item, "block", (4,))
        if uncles != [] or withdrawals != []:
            raise MessageError("a QBFT block has no uncles and no withdrawals")
        try:
            header = codec.decode_header(_list(header_item, "header"))
        except (rlp.DeserializationError, rlp.exceptions.ObjectDeserializationError) as exc:
            raise MessageError(f"block header: {exc}") from exc
        transactions = []
        for tx_item in _list(tx_items, "transactions"):
            raw = tx_item if isinstance(tx_item, bytes) else rlp.encode(tx_item)
            try:
                transactions.append(codec.decode_transaction(raw))
            except Exception as exc:  # py-evm raises several unrelated types for bad input
                raise MessageError(f"transaction: {exc!r}") from exc
        return cls(header, tuple(transactions))

    @classmethod
    def decode(cls, data: bytes, codec: BlockCodec) -> QbftBlock:
        return cls.from_rlp(_decode_rlp(data, "block"), codec)


# ---------------------------------------------------------------------------------------------
# Payloads


class Payload(Protocol):
    """What every signed payload provides: its message code and its RLP items."""

    code: ClassVar[int]
    height: int
    round: int

    def to_rlp(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class PreparedRoundMetadata:
    """`[preparedRound, preparedBlockHash]`: the round a block prepared in and its digest."""

    round: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class PreparePayload:
    """`[height, round, digest]`: the author accepted the proposal with this digest."""

    code: ClassVar[int] = PREPARE
    height: int
    round: int
    digest: bytes

    def to_rlp(self) -> list[Any]:
        return [self.height, self.round, self.digest]

    @classmethod
    def from_rlp(cls, item: RawItem) -> PreparePayload:
        height, round_, digest = _list(item, "prepare payload", (3,))
        return cls(
            _int(height, "height"), _int(round_, "round"), _bytes(digest, HASH_LENGTH, "digest")
        )


@dataclass(frozen=True, slots=True)
class CommitPayload:
    """`[height, round, digest, seal]`: the author's commit seal for the proposal."""

    code: ClassVar[int] = COMMIT
    height: int
    round: int
    digest: bytes
    seal: bytes

    def to_rlp(self) -> list[Any]:
        return [self.height, self.round, self.digest, self.seal]

    @classmethod
    def from_rlp(cls, item: RawItem) -> CommitPayload:
        height, round_, digest, seal = _list(item, "commit payload", (4,))
        return cls(
            _int(height, "height"),
            _int(round_, "round"),
            _bytes(digest, HASH_LENGTH, "digest"),
            _bytes(seal, SIGNATURE_LENGTH, "commit seal"),
        )


@dataclass(frozen=True, slots=True)
class RoundChangePayload:
    """`[height, targetRound, [] | [preparedRound, preparedBlockHash]]`."""

    code: ClassVar[int] = ROUND_CHANGE
    height: int
    round: int
    prepared: PreparedRoundMetadata | None = None

    def to_rlp(self) -> list[Any]:
        metadata = [] if self.prepared is None else [self.prepared.round, self.prepared.block_hash]
        return [self.height, self.round, metadata]

    @classmethod
    def from_rlp(cls, item: RawItem) -> RoundChangePayload:
        height, round_, metadata = _list(item, "round-change payload", (3,))
        prepared = None
        if _list(metadata, "prepared round metadata", (0, 2)):
            prepared_round, block_hash = metadata
            prepared = PreparedRoundMetadata(
                _int(prepared_round, "prepared round"),
                _bytes(block_hash, HASH_LENGTH, "prepared block hash"),
            )
        return cls(_int(height, "height"), _int(round_, "round"), prepared)


@dataclass(frozen=True, slots=True)
class ProposalPayload:
    """`[height, round, block]`; Besu ≥ 26.1 may append a block-access-list item we ignore."""

    code: ClassVar[int] = PROPOSAL
    height: int
    round: int
    block: QbftBlock

    def to_rlp(self) -> list[Any]:
        return [self.height, self.round, self.block.to_rlp()]

    @classmethod
    def from_rlp(cls, item: RawItem, codec: BlockCodec) -> ProposalPayload:
        items = _list(item, "proposal payload", (3, 4))
        block = QbftBlock.from_rlp(items[2], codec)
        return cls(_int(items[0], "height"), _int(items[1], "round"), block)


P = TypeVar("P", PreparePayload, CommitPayload, RoundChangePayload, ProposalPayload)


# ---------------------------------------------------------------------------------------------
# Signed payloads


def signing_hash(code: int, payload_items: RawItem) -> bytes:
    """keccak(rlp([msgCode, payload])), Besu's `QbftPayload.hashForSignature`."""
    return keccak(rlp.encode([code, payload_items]))


def recover_author(message_hash: bytes, signature: bytes) -> bytes:
    """The address that produced `signature`, rejecting malformed and high-s signatures."""
    if len(signature) != SIGNATURE_LENGTH:
        raise MessageError("signature must be 65 bytes")
    s = int.from_bytes(signature[32:64], "big")
    if s > _HALF_N:
        raise MessageError("signature s is in the upper half of the curve order")
    if signature[64] not in (0, 1):
        raise MessageError("signature recovery id must be 0 or 1")
    try:
        public_key = keys.Signature(signature).recover_public_key_from_msg_hash(message_hash)
    except (BadSignature, ValueError) as exc:
        raise MessageError(f"signature does not recover: {exc}") from exc
    return public_key.to_canonical_address()


@dataclass(frozen=True)
class Signed(Generic[P]):
    """A payload, its signature and the author recovered from it.

    `raw` holds the payload's RLP items exactly as signed, so re-encoding never depends on
    this codebase reproducing another implementation's optional fields.
    """

    payload: P
    signature: bytes
    author: bytes
    raw: RawItem = field(repr=False, compare=False)

    @property
    def height(self) -> int:
        return self.payload.height

    @property
    def round(self) -> int:
        return self.payload.round

    def to_rlp(self) -> list[Any]:
        return [self.raw, self.signature]

    @classmethod
    def create(cls, payload: P, key: NodeSigner) -> Signed[P]:
        raw = payload.to_rlp()
        signature = key.sign_msg_hash(signing_hash(payload.code, raw)).to_bytes()
        return cls(payload, signature, key.public_key.to_canonical_address(), raw)

    @classmethod
    def from_rlp(cls, item: RawItem, parse: Callable[[RawItem], P], code: int) -> Signed[P]:
        raw, signature = _list(item, "signed payload", (2,))
        payload = parse(raw)
        author = recover_author(
            signing_hash(code, raw), _bytes(signature, SIGNATURE_LENGTH, "signature")
        )
        return cls(payload, signature, author, raw)


def _signed_list(item: RawItem, parse: Callable[[RawItem], P], code: int) -> tuple[Signed[P], ...]:
    return tuple(Signed.from_rlp(entry, parse, code) for entry in _list(item, "signed list"))


# ---------------------------------------------------------------------------------------------
# Messages


class _Message:
    """Shared behaviour: cached encoding, height/round/author of the outer signed payload."""

    code: ClassVar[int]
    signed: Signed[Any]

    @property
    def height(self) -> int:
        return self.signed.payload.height

    @property
    def round(self) -> int:
        return self.signed.payload.round

    @property
    def author(self) -> bytes:
        return self.signed.author

    def to_rlp(self) -> list[Any]:
        raise NotImplementedError

    @cached_property
    def data(self) -> bytes:
        """The message as sent on the wire (the devp2p message body for `code`)."""
        return rlp.encode(self.to_rlp())

    def encode(self) -> bytes:
        return self.data

    @cached_property
    def key(self) -> bytes:
        """Identity for duplicate detection (Besu's `MessageTracker` hashes the message)."""
        return keccak(bytes([self.code]) + self.data)


@dataclass(frozen=True, eq=False)
class Prepare(_Message):
    """PREPARE `[[height, round, digest], sig]`."""

    code: ClassVar[int] = PREPARE
    signed: Signed[PreparePayload]

    @property
    def digest(self) -> bytes:
        return self.signed.payload.digest

    def to_rlp(self) -> list[Any]:
        return self.signed.to_rlp()

    @classmethod
    def create(cls, key: NodeSigner, height: int, round_: int, digest: bytes) -> Prepare:
        return cls(Signed.create(PreparePayload(height, round_, digest), key))

    @classmethod
    def decode(cls, data: bytes) -> Prepare:
        item = _decode_rlp(data, "PREPARE")
        return cls(Signed.from_rlp(item, PreparePayload.from_rlp, PREPARE))


@dataclass(frozen=True, eq=False)
class Commit(_Message):
    """COMMIT `[[height, round, digest, seal], sig]`."""

    code: ClassVar[int] = COMMIT
    signed: Signed[CommitPayload]

    @property
    def digest(self) -> bytes:
        return self.signed.payload.digest

    @property
    def seal(self) -> bytes:
        return self.signed.payload.seal

    def to_rlp(self) -> list[Any]:
        return self.signed.to_rlp()

    @classmethod
    def create(
        cls, key: NodeSigner, height: int, round_: int, digest: bytes, seal: bytes
    ) -> Commit:
        return cls(Signed.create(CommitPayload(height, round_, digest, seal), key))

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        item = _decode_rlp(data, "COMMIT")
        return cls(Signed.from_rlp(item, CommitPayload.from_rlp, COMMIT))


@dataclass(frozen=True, eq=False)
class RoundChange(_Message):
    """ROUND-CHANGE `[[[height, targetRound, P], sig], blockOrEmptyList, [signedPrepare…]]`.

    The block and prepares form the sender's prepared certificate; both are empty when it
    has none. Besu ≥ 26.1 inserts a block-access-list item after the block: decoding accepts
    and ignores it, encoding writes the three-item form every version reads.
    """

    code: ClassVar[int] = ROUND_CHANGE
    signed: Signed[RoundChangePayload]
    block: QbftBlock | None = None
    prepares: tuple[Signed[PreparePayload], ...] = ()

    @property
    def prepared(self) -> PreparedRoundMetadata | None:
        return self.signed.payload.prepared

    def to_rlp(self) -> list[Any]:
        block = [] if self.block is None else self.block.to_rlp()
        return [self.signed.to_rlp(), block, [p.to_rlp() for p in self.prepares]]

    @classmethod
    def create(
        cls,
        key: NodeSigner,
        height: int,
        round_: int,
        prepared: PreparedRoundMetadata | None = None,
        block: QbftBlock | None = None,
        prepares: Sequence[Signed[PreparePayload]] = (),
    ) -> RoundChange:
        signed = Signed.create(RoundChangePayload(height, round_, prepared), key)
        return cls(signed, block, tuple(prepares))

    @classmethod
    def decode(cls, data: bytes, codec: BlockCodec) -> RoundChange:
        items = _list(_decode_rlp(data, "ROUND-CHANGE"), "ROUND-CHANGE", (3, 4))
        signed = Signed.from_rlp(items[0], RoundChangePayload.from_rlp, ROUND_CHANGE)
        block = None if items[1] == [] else QbftBlock.from_rlp(items[1], codec)
        prepares = _signed_list(items[-1], PreparePayload.from_rlp, PREPARE)
        return cls(signed, block, prepares)


@dataclass(frozen=True, eq=False)
class Proposal(_Message):
    """PROPOSAL `[[[height, round, block], sig], [[signedRoundChangePayload…], [signedPrepare…]]]`.

    The justification carries only signed round-change payloads (no blocks) and the prepares
    of the highest prepared certificate among them; both lists are empty in round 0.
    """

    code: ClassVar[int] = PROPOSAL
    signed: Signed[ProposalPayload]
    round_changes: tuple[Signed[RoundChangePayload], ...] = ()
    prepares: tuple[Signed[PreparePayload], ...] = ()

    @property
    def block(self) -> QbftBlock:
        return self.signed.payload.block

    def to_rlp(self) -> list[Any]:
        return [
            self.signed.to_rlp(),
            [[rc.to_rlp() for rc in self.round_changes], [p.to_rlp() for p in self.prepares]],
        ]

    @classmethod
    def create(
        cls,
        key: NodeSigner,
        height: int,
        round_: int,
        block: QbftBlock,
        round_changes: Sequence[Signed[RoundChangePayload]] = (),
        prepares: Sequence[Signed[PreparePayload]] = (),
    ) -> Proposal:
        signed = Signed.create(ProposalPayload(height, round_, block), key)
        return cls(signed, tuple(round_changes), tuple(prepares))

    @classmethod
    def decode(cls, data: bytes, codec: BlockCodec) -> Proposal:
        signed_item, justification = _list(_decode_rlp(data, "PROPOSAL"), "PROPOSAL", (2,))
        signed = Signed.from_rlp(
            signed_item, lambda raw: ProposalPayload.from_rlp(raw, codec), PROPOSAL
        )
        round_changes, prepares = _list(justification, "proposal justification", (2,))
        return cls(
            signed,
            _signed_list(round_changes, RoundChangePayload.from_rlp, ROUND_CHANGE),
            _signed_list(prepares, PreparePayload.from_rlp, PREPARE),
        )


QbftMessage = Proposal | Prepare | Commit | RoundChange

_DECODERS: dict[int, Callable[[bytes, BlockCodec], QbftMessage]] = {
    PROPOSAL: Proposal.decode,
    PREPARE: lambda data, _codec: Prepare.decode(data),
    COMMIT: lambda data, _codec: Commit.decode(data),
    ROUND_CHANGE: RoundChange.decode,
}


def decode_message(code: int, data: bytes, codec: BlockCodec) -> QbftMessage:
    """Decode a QBFT message body received with devp2p message `code`, its blocks by `codec`.

    The decoded message caches `data` as its encoding, so re-gossip forwards the exact bytes.
    """
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise MessageError(f"unknown QBFT message code {code:#x}")
    message = decoder(data, codec)
    message.__dict__["data"] = data
    return message
