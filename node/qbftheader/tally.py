"""The validator set a chain of QBFT headers implies, as Besu's QBFT (block-header mode) tallies it.

Validators at height h are the tally after block h-1 (shared/QBFT.md §4): only a block's
coinbase votes; a proposer's later vote on a subject replaces its earlier one; at
floor(n/2) + 1 votes the subject is added or removed and every vote on it is cleared; a
removed validator's own votes are discarded; an epoch block restarts the tally from its own
extraData validator list with no pending votes, ignoring its own vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import rlp

from node.qbftheader.extra_data import QbftExtraData, Vote

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import BlockHeaderAPI

DEFAULT_EPOCH_LENGTH = 30_000


@dataclass(frozen=True, slots=True)
class VoteTally:
    """The validator set and the votes pending on it, after some block."""

    validators: tuple[bytes, ...]
    votes: tuple[tuple[bytes, bytes, bool], ...] = field(default=())  # (voter, subject, add)

    @property
    def threshold(self) -> int:
        return len(self.validators) // 2 + 1

    def after(self, header: BlockHeaderAPI, epoch_length: int = DEFAULT_EPOCH_LENGTH) -> VoteTally:
        """The tally once `header` is applied on top of this one."""
        extra = QbftExtraData.decode(header.extra_data)
        if header.block_number % epoch_length == 0:
            return VoteTally(tuple(sorted(extra.validators)))
        if extra.vote is None or header.coinbase not in self.validators:
            return self
        return self._cast(header.coinbase, extra.vote)

    def _cast(self, voter: bytes, vote: Vote) -> VoteTally:
        is_member = vote.recipient in self.validators
        if vote.add == is_member:
            # A vote for what already holds: it only withdraws the voter's earlier vote.
            remaining = tuple(v for v in self.votes if (v[0], v[1]) != (voter, vote.recipient))
            return VoteTally(self.validators, remaining)
        votes = [v for v in self.votes if (v[0], v[1]) != (voter, vote.recipient)]
        votes.append((voter, vote.recipient, vote.add))
        in_favour = sum(1 for v in votes if v[1] == vote.recipient and v[2] == vote.add)
        if in_favour < self.threshold:
            return VoteTally(self.validators, tuple(votes))
        if vote.add:
            validators = tuple(sorted((*self.validators, vote.recipient)))
            votes = [v for v in votes if v[1] != vote.recipient]
        else:
            validators = tuple(v for v in self.validators if v != vote.recipient)
            votes = [v for v in votes if v[1] != vote.recipient and v[0] != vote.recipient]
        return VoteTally(validators, tuple(votes))

    def encode(self) -> bytes:
        return rlp.encode(
            [
                list(self.validators),
                [[voter, subject, b"\x01" if add else b""] for voter, subject, add in self.votes],
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> VoteTally:
        validators, votes = rlp.decode(data)
        return cls(
            tuple(validators),
            tuple((voter, subject, add == b"\x01") for voter, subject, add in votes),
        )

    def pending_for(self, subject: bytes) -> list[tuple[bytes, bool]]:
        return [(voter, add) for voter, s, add in self.votes if s == subject]
