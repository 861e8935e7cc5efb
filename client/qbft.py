"""QBFT block headers as a verifier reads them: hashes, extraData, commit seals, votes, proposers.

Written from shared/QBFT.md (Besu's rules) rather than imported from the node, so that an
auditor's check does not inherit the node's bugs: if the two disagree, the audit says so. The
header itself is py-evm's Prague header class (the RLP field order is the library's, not ours).

- **Block hash** (what `parentHash` links to): the header's keccak with extraData's round set
  to 0 and its seals removed; block 0 hashes its extraData unchanged.
- **Commit seal**: a raw recoverable secp256k1 signature over the header hashed with extraData's
  seals removed and its round kept.
- **Validators at height h**: the vote tally after block h-1 (Besu's `VoteTally`).
- **Proposer of (h, r)**: rotation from the parent's coinbase (Besu's `BftProposerSelector`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils import to_bytes, to_int

from client.errors import MalformedHeader

VANITY_LENGTH = 32
SEAL_LENGTH = 65
VOTE_ADD = b"\xff"
VOTE_DROP = b""
MIX_HASH = bytes.fromhex("63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365")
"""QBFT's fixed mixHash, "tical byzantine fault tolerance" (Besu `BftHelpers.EXPECTED_MIX_HASH`)."""


@dataclass(frozen=True, slots=True)
class ExtraData:
    """The five-item QBFT extraData: vanity, validators, vote, round, commit seals."""

    vanity: bytes
    validators: tuple[bytes, ...]
    vote: tuple[bytes, bool] | None  # (recipient, add?)
    round: int
    seals: tuple[bytes, ...]

    def encode(self) -> bytes:
        vote = [] if self.vote is None else [self.vote[0], VOTE_ADD if self.vote[1] else VOTE_DROP]
        return rlp.encode([self.vanity, list(self.validators), vote, self.round, list(self.seals)])

    def unsealed(self, round_number: int) -> ExtraData:
        """The form a hash covers: seals removed, round as given (0 for the block hash)."""
        return replace(self, round=round_number, seals=())


def decode_extra_data(raw: bytes) -> ExtraData:
    """Parse extraData; `MalformedHeader` names what is wrong with anything but Besu's shape."""
    try:
        items = rlp.decode(raw)
    except rlp.DecodingError as exc:
        raise MalformedHeader(f"extraData is not RLP: {exc}") from exc
    if not isinstance(items, list) or len(items) != 5:
        raise MalformedHeader("extraData is not a list of five items")
    vanity, validators, vote, round_bytes, seals = items
    if not isinstance(vanity, bytes) or len(vanity) != VANITY_LENGTH:
        raise MalformedHeader("extraData vanity is not 32 bytes")
    if not isinstance(validators, list) or not all(_is_address(v) for v in validators):
        raise MalformedHeader("extraData validators are not 20-byte addresses")
    if not isinstance(round_bytes, bytes) or round_bytes[:1] == b"\x00":
        raise MalformedHeader("extraData round is not a canonical integer")
    if not isinstance(seals, list) or not all(
        isinstance(s, bytes) and len(s) == SEAL_LENGTH for s in seals
    ):
        raise MalformedHeader("extraData seals are not 65-byte signatures")
    return ExtraData(
        vanity, tuple(validators), _decode_vote(vote), to_int(round_bytes), tuple(seals)
    )


def _is_address(item: object) -> bool:
    return isinstance(item, bytes) and len(item) == 20


def _decode_vote(item: object) -> tuple[bytes, bool] | None:
    if item == []:
        return None
    if not isinstance(item, list) or len(item) != 2 or not _is_address(item[0]):
        raise MalformedHeader("extraData vote is neither [] nor [address, type]")
    if item[1] not in (VOTE_ADD, VOTE_DROP):
        raise MalformedHeader(f"extraData vote type {item[1]!r} is neither ADD nor DROP")
    return item[0], item[1] == VOTE_ADD


def genesis_extra_data(validators: Sequence[bytes], vanity: bytes = b"") -> bytes:
    """Block 0's extraData: sorted validators, no vote, round 0, no seals."""
    padded = vanity.rjust(VANITY_LENGTH, b"\x00")
    return ExtraData(padded, tuple(sorted(validators)), None, 0, ()).encode()


# --- headers ---------------------------------------------------------------------------------

_JSON_FIELDS: tuple[tuple[str, str, bool], ...] = (
    # (py-evm field, JSON-RPC field, is a quantity)
    ("parent_hash", "parentHash", False),
    ("uncles_hash", "sha3Uncles", False),
    ("coinbase", "miner", False),
    ("state_root", "stateRoot", False),
    ("transaction_root", "transactionsRoot", False),
    ("receipt_root", "receiptsRoot", False),
    ("bloom", "logsBloom", True),
    ("difficulty", "difficulty", True),
    ("block_number", "number", True),
    ("gas_limit", "gasLimit", True),
    ("gas_used", "gasUsed", True),
    ("timestamp", "timestamp", True),
    ("extra_data", "extraData", False),
    ("mix_hash", "mixHash", False),
    ("nonce", "nonce", False),
    ("base_fee_per_gas", "baseFeePerGas", True),
    ("withdrawals_root", "withdrawalsRoot", False),
    ("blob_gas_used", "blobGasUsed", True),
    ("excess_blob_gas", "excessBlobGas", True),
    ("parent_beacon_block_root", "parentBeaconBlockRoot", False),
    ("requests_hash", "requestsHash", False),
)


def header_from_json(block: Mapping[str, Any]) -> BlockHeaderAPI:
    """The header of a JSON-RPC block object (Prague fields, as Tally serves them)."""
    try:
        values: dict[str, Any] = {
            name: to_int(hexstr=block[key]) if quantity else to_bytes(hexstr=block[key])
            for name, key, quantity in _JSON_FIELDS
        }
        return PragueBlockHeader(**values)
    except (KeyError, TypeError, ValueError, rlp.exceptions.ObjectSerializationError) as exc:
        raise MalformedHeader(f"block JSON is not a Prague header: {exc!r}") from exc


def header_from_rlp(raw: bytes) -> BlockHeaderAPI:
    try:
        return rlp.decode(raw, sedes=PragueBlockHeader)
    except (rlp.DecodingError, rlp.DeserializationError) as exc:
        raise MalformedHeader(f"not an RLP Prague header: {exc}") from exc


def block_hash(header: BlockHeaderAPI) -> bytes:
    """The on-chain hash: round and seals excluded, so it is fixed before the seals exist."""
    if header.block_number == 0:
        return bytes(header.hash)
    extra = decode_extra_data(header.extra_data).unsealed(0)
    return bytes(header.copy(extra_data=extra.encode()).hash)


def onchain_form(header: BlockHeaderAPI) -> BlockHeaderAPI:
    """The header as its hash sees it: a py-evm header whose `.hash` is the on-chain hash."""
    if header.block_number == 0:
        return header
    return header.copy(extra_data=decode_extra_data(header.extra_data).unsealed(0).encode())


def commit_seal_hash(header: BlockHeaderAPI, round_number: int) -> bytes:
    extra = decode_extra_data(header.extra_data).unsealed(round_number)
    return bytes(header.copy(extra_data=extra.encode()).hash)


def seal_signer(digest: bytes, seal: bytes) -> bytes | None:
    """The address whose key made `seal` over `digest`, or None for an unusable signature."""
    try:
        signature = keys.Signature(seal)
        return bytes(signature.recover_public_key_from_msg_hash(digest).to_canonical_address())
    except (BadSignature, ValueError):
        return None


# --- validators --------------------------------------------------------------------------------


def quorum(validator_count: int) -> int:
    """ceil(2n/3) commit seals (Besu `BftHelpers.calculateRequiredValidatorQuorum`)."""
    return math.ceil(2 * validator_count / 3)


def proposer(validators: Sequence[bytes], previous: bytes, round_number: int) -> bytes:
    """Proposer of `round_number` at a height whose parent was proposed by `previous`.

    Rotation starts after the previous proposer; if it is no longer a validator (or is the
    genesis zero coinbase), at the first validator above it, wrapping to the first.
    """
    ordered = sorted(validators)
    if previous in ordered:
        start = ordered.index(previous) + 1
    else:
        start = bisect.bisect_right(ordered, previous)
    return ordered[(start + round_number) % len(ordered)]


@dataclass(frozen=True, slots=True)
class VoteTally:
    """Validators and pending votes after some block, kept as Besu's `VoteTally` keeps them.

    Votes are sets of voters per subject, one for ADD and one for DROP; a voter's new vote on
    a subject moves it from the other set. At floor(n/2) + 1 votes the subject is added or
    removed and its votes cleared; a removed validator's own votes go with it. An epoch block
    restarts from the validators its extraData lists, with no votes.
    """

    validators: frozenset[bytes]
    adds: Mapping[bytes, frozenset[bytes]] = field(default_factory=dict)
    drops: Mapping[bytes, frozenset[bytes]] = field(default_factory=dict)

    @classmethod
    def starting(cls, validators: Sequence[bytes]) -> VoteTally:
        return cls(frozenset(validators))

    @property
    def sorted(self) -> tuple[bytes, ...]:
        return tuple(sorted(self.validators))

    def after(self, header: BlockHeaderAPI, epoch_length: int) -> VoteTally:
        """The tally once `header` (already checked to decode) is applied."""
        extra = decode_extra_data(header.extra_data)
        if header.block_number % epoch_length == 0:
            return VoteTally.starting(extra.validators)
        if extra.vote is None or header.coinbase not in self.validators:
            return self
        subject, add = extra.vote
        voter = header.coinbase
        adds = {s: v - {voter} if s == subject else v for s, v in self.adds.items()}
        drops = {s: v - {voter} if s == subject else v for s, v in self.drops.items()}
        target = adds if add else drops
        target[subject] = target.get(subject, frozenset()) | {voter}
        validators = set(self.validators)
        if len(target[subject]) >= len(self.validators) // 2 + 1:
            adds.pop(subject, None)
            drops.pop(subject, None)
            if add:
                validators.add(subject)
            else:
                validators.discard(subject)
                adds = {s: v - {subject} for s, v in adds.items()}
                drops = {s: v - {subject} for s, v in drops.items()}
        return VoteTally(frozenset(validators), adds, drops)
