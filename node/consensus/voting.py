"""A validator's side of voting in block headers: which vote to propose, and which are unsafe.

The tally the votes produce is header format (`node.qbftheader.tally`).

`vote_hazard` is the check an operator's proposal goes through first (`qbft_proposeValidatorVote`
without `force`): voting in an address no node runs, or voting the set to more validators than
can sign, halts the chain for good once a majority agrees, and nothing in QBFT undoes it.
"""

from __future__ import annotations

from collections.abc import Collection

from node.qbftheader.extra_data import Vote
from node.qbftheader.quorum import quorum
from node.qbftheader.tally import VoteTally


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
