"""Validator voting in block headers, as Besu's QBFT (block-header mode) tallies it.

Validators at height h are the tally after block h-1 (shared/QBFT.md §4): only a block's
coinbase votes; a proposer's later vote on a subject replaces its earlier one; at
floor(n/2) + 1 votes the subject is added or removed and every vote on it is cleared; a
removed validator's own votes are discarded; an epoch block restarts the tally from its own
extraData validator list with no pending votes, ignoring its own vote.

`vote_hazard` is the check an operator's proposal goes through first (`qbft_proposeValidatorVote`
without `force`): voting in an address no node runs, or voting the set to more validators than
can sign, halts the chain for good once a majority agrees, and nothing in QBFT undoes it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import rlp
from eth.abc import BlockHeaderAPI

from node.consensus.extra_data import QbftExtraData, Vote
from node.consensus.qbft.validators import quorum

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


def choose_vote(
    tally: VoteTally, proposer: bytes, proposals: dict[bytes, bool], last_index: int
) -> tuple[Vote | None, int]:
    """The vote a proposer puts in its next block, rotating through its local proposals.

    Skips proposals that already hold (adding a member, dropping a non-member) and ones this
    proposer has already voted for in the current tally, as Besu's `VoteProposer` does.
    Returns the vote (or None) and the rotation index to resume from.
    """
    subjects = sorted(proposals)
    for step in range(len(subjects)):
        index = (last_index + 1 + step) % len(subjects)
        subject = subjects[index]
        add = proposals[subject]
        if add == (subject in tally.validators):
            continue
        if (proposer, subject, add) in tally.votes:
            continue
        return Vote(subject, add), index
    return None, last_index


def vote_hazard(
    validators: Collection[bytes],
    subject: bytes,
    add: bool,
    live: Collection[bytes],
    allowed: Collection[bytes] | None,
) -> str | None:
    """Why voting `subject` in (`add`) or out of `validators` would endanger the chain, or None.

    `live` are the nodes this node knows to be up (itself and its connected peers); `allowed`
    the nodes that may run on this network (NodeRules, else network.json; None: no list). A
    vote is refused when it would add a node that may not run here, or leave fewer live
    validators than a QBFT quorum (ceil(2n/3)) of the new set: no block could be sealed after
    it, and a halted chain cannot vote to undo it. A vote for what already holds is harmless.
    """
    if add == (subject in validators):
        return None
    name = "0x" + subject.hex()
    if add and allowed is not None and subject not in allowed:
        return f"{name} is not an allowed node of this network (NodeRules or network.json)"
    after = set(validators) | {subject} if add else set(validators) - {subject}
    if not after:
        return f"removing {name} would leave no validator"
    need, up = quorum(len(after)), len(after & set(live))
    if up < need:
        return (
            f"{'adding' if add else 'removing'} {name} would leave {up} live validator(s) of "
            f"{len(after)}, fewer than the quorum of {need}: the chain would halt"
        )
    return None


def tally_through(start: VoteTally, headers: Iterable[BlockHeaderAPI], epoch: int) -> VoteTally:
    tally = start
    for header in headers:
        tally = tally.after(header, epoch)
    return tally


class VoteProposals:
    """This validator's pending proposals (subject -> add?), set over JSON-RPC.

    Kept in memory like Besu's: a restarted validator forgets them, and proposals only take
    effect through votes in blocks this validator proposes.
    """

    def __init__(self) -> None:
        self._proposals: dict[bytes, bool] = {}
        self._last_index = -1

    def propose(self, subject: bytes, add: bool) -> None:
        self._proposals[subject] = add

    def discard(self, subject: bytes) -> None:
        self._proposals.pop(subject, None)

    def pending(self) -> dict[bytes, bool]:
        return dict(self._proposals)

    def next_vote(self, tally: VoteTally, proposer: bytes) -> Vote | None:
        vote, self._last_index = choose_vote(tally, proposer, self._proposals, self._last_index)
        return vote
