"""QBFT `extraData`: the five-item RLP list Besu and GoQuorum put in every block header.

`[vanity(32), validators[20-byte, ascending], vote([] | [address, 0xff=ADD | ''=DROP]),
round(int), seals[65-byte r||s||recId]]` — see shared/QBFT.md §1.2. Encoding goes through
the `rlp` library; this module only fixes the shape and rejects anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import rlp

VANITY_LENGTH = 32
SEAL_LENGTH = 65
_VOTE_ADD = b"\xff"
_VOTE_DROP = b""


class ExtraDataError(ValueError):
    """extraData that is not a well-formed QBFT five-item list."""


@dataclass(frozen=True, slots=True)
class Vote:
    """A proposer's vote to add or drop `recipient` from the validator set."""

    recipient: bytes
    add: bool


@dataclass(frozen=True, slots=True)
class QbftExtraData:
    vanity: bytes
    validators: tuple[bytes, ...]
    vote: Vote | None
    round: int
    seals: tuple[bytes, ...]

    def encode(self) -> bytes:
        vote: list[bytes] = (
            []
            if self.vote is None
            else [self.vote.recipient, _VOTE_ADD if self.vote.add else _VOTE_DROP]
        )
        return rlp.encode([self.vanity, list(self.validators), vote, self.round, list(self.seals)])

    def without_seals(self, round_number: int) -> QbftExtraData:
        """The form hashed for the on-chain hash (round 0) or a commit seal (its round)."""
        return replace(self, round=round_number, seals=())

    @classmethod
    def decode(cls, raw: bytes) -> QbftExtraData:
        try:
            items = rlp.decode(raw)
        except rlp.DecodingError as exc:
            raise ExtraDataError(f"extraData is not RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) != 5:
            raise ExtraDataError("extraData must be a list of exactly five items")
        vanity, validators, vote_item, round_bytes, seals = items
        if not isinstance(vanity, bytes) or len(vanity) != VANITY_LENGTH:
            raise ExtraDataError("extraData vanity must be 32 bytes")
        if not isinstance(validators, list) or any(
            not isinstance(v, bytes) or len(v) != 20 for v in validators
        ):
            raise ExtraDataError("extraData validators must be 20-byte addresses")
        if not isinstance(round_bytes, bytes) or round_bytes[:1] == b"\x00":
            raise ExtraDataError("extraData round must be a canonical RLP integer")
        if not isinstance(seals, list) or any(
            not isinstance(s, bytes) or len(s) != SEAL_LENGTH for s in seals
        ):
            raise ExtraDataError("extraData seals must be 65-byte signatures")
        return cls(
            vanity=vanity,
            validators=tuple(validators),
            vote=_decode_vote(vote_item),
            round=int.from_bytes(round_bytes, "big"),
            seals=tuple(seals),
        )


def _decode_vote(item: object) -> Vote | None:
    if item == []:
        return None
    if not isinstance(item, list) or len(item) != 2:
        raise ExtraDataError("extraData vote must be [] or [recipient, type]")
    recipient, vote_type = item
    if not isinstance(recipient, bytes) or len(recipient) != 20:
        raise ExtraDataError("vote recipient must be a 20-byte address")
    if vote_type == _VOTE_ADD:
        return Vote(recipient, add=True)
    if vote_type == _VOTE_DROP:
        return Vote(recipient, add=False)
    raise ExtraDataError(f"unknown vote type {vote_type!r}")


def genesis_extra_data(validators: list[bytes], vanity: bytes = b"") -> bytes:
    """extraData for a genesis block: sorted validators, no vote, round 0, no seals."""
    return QbftExtraData(
        vanity=vanity.rjust(VANITY_LENGTH, b"\x00"),
        validators=tuple(sorted(validators)),
        vote=None,
        round=0,
        seals=(),
    ).encode()
