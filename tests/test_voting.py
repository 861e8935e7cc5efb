"""Validator voting (shared/QBFT.md checklist item 12) on real QBFT headers."""

from __future__ import annotations

from eth.abc import BlockHeaderAPI

from node.chain.genesis import dev_genesis
from node.consensus.voting import choose_vote, vote_hazard
from node.qbftheader.extra_data import QbftExtraData, Vote
from node.qbftheader.tally import VoteTally
from node.storage.store import MemoryStore

A, B, C, D, E = (bytes([value]) * 20 for value in (0x0A, 0x0B, 0x0C, 0x0D, 0x0E))
GENESIS = dev_genesis(A).header(MemoryStore())


def header(
    number: int,
    coinbase: bytes,
    vote: Vote | None,
    validators: tuple[bytes, ...] = (A, B, C, D),
) -> BlockHeaderAPI:
    extra = QbftExtraData(b"\x00" * 32, tuple(sorted(validators)), vote, 0, ())
    return GENESIS.copy(block_number=number, coinbase=coinbase, extra_data=extra.encode())


def test_majority_add_takes_effect_at_the_vote_that_crosses_the_threshold() -> None:
    tally = VoteTally((A, B, C, D))
    assert tally.threshold == 3
    tally = tally.after(header(1, A, Vote(E, add=True)))
    tally = tally.after(header(2, B, Vote(E, add=True)))
    assert E not in tally.validators and len(tally.pending_for(E)) == 2
    tally = tally.after(header(3, C, Vote(E, add=True)))
    assert tally.validators == (A, B, C, D, E) and tally.pending_for(E) == []


def test_a_later_vote_replaces_the_earlier_and_non_validators_do_not_count() -> None:
    tally = VoteTally((A, B, C, D))
    tally = tally.after(header(1, A, Vote(D, add=False)))
    tally = tally.after(header(2, A, Vote(D, add=False)))
    assert tally.pending_for(D) == [(A, False)]
    tally = tally.after(header(3, E, Vote(D, add=False)))
    assert tally.pending_for(D) == [(A, False)]


def test_drop_removes_and_discards_the_dropped_validators_votes() -> None:
    tally = VoteTally((A, B, C, D))
    tally = tally.after(header(1, D, Vote(E, add=True)))
    for number, voter in enumerate((A, B, C), start=2):
        tally = tally.after(header(number, voter, Vote(D, add=False)))
    assert tally.validators == (A, B, C)
    assert tally.votes == ()


def test_epoch_restarts_from_the_epoch_headers_list_ignoring_its_vote() -> None:
    tally = VoteTally((A, B, C, D)).after(header(1, A, Vote(E, add=True)))
    epoch_header = header(30, B, Vote(E, add=True), validators=(A, B, C))
    after_epoch = tally.after(epoch_header, epoch_length=30)
    assert after_epoch.validators == (A, B, C) and after_epoch.votes == ()


def test_tally_encoding_round_trips() -> None:
    tally = VoteTally((A, B), ((A, C, True), (B, A, False)))
    assert VoteTally.decode(tally.encode()) == tally


def test_vote_rotation_skips_what_already_holds_and_repeats() -> None:
    tally = VoteTally((A, B, C, D), ((A, E, True),))
    proposals = {E: True, B: True, C: False}
    vote, index = choose_vote(tally, A, proposals, -1)
    assert vote == Vote(C, add=False)
    vote, _ = choose_vote(tally, A, {E: True, B: True}, index)
    assert vote is None


def test_chain_keeps_the_tally_after_every_block() -> None:
    from node.chain.chain import Chain
    from node.storage.chainstore import ChainStore

    chain = Chain(ChainStore(MemoryStore()), dev_genesis(A))
    assert chain.validator_tally(chain.head_hash).validators == (A,)
    extra = QbftExtraData(b"\x00" * 32, (A,), Vote(B, add=True), 0, ())
    pending = chain.build([], timestamp=5, coinbase=A, extra_data=extra.encode())
    chain.commit(pending, pending.header)
    assert chain.validator_tally(chain.head_hash).validators == (A, B)


def test_vote_hazard_refuses_a_node_that_may_not_run_here() -> None:
    reason = vote_hazard((A, B, C, D), E, True, live=(A, B, C, D, E), allowed=(A, B, C, D))
    assert reason is not None and "not an allowed node" in reason
    assert vote_hazard((A, B, C, D), E, True, live=(A, B, C, D, E), allowed=(A, B, C, D, E)) is None
    # No node list (a dev chain): only the quorum counts.
    assert vote_hazard((A, B, C, D), E, True, live=(A, B, C, D), allowed=None) is None


def test_vote_hazard_refuses_a_set_with_fewer_live_validators_than_a_quorum() -> None:
    # Voting in nodes that never run: 4 live of 5 still make the quorum of 4...
    assert vote_hazard((A, B, C, D), E, True, live=(A, B, C, D), allowed=None) is None
    # ...4 live of 7 do not make the quorum of 5.
    six = (A, B, C, D, E, bytes([0x0F]) * 20)
    reason = vote_hazard(six, bytes([0x10]) * 20, True, live=(A, B, C, D), allowed=None)
    assert reason is not None and "4 live validator(s) of 7, fewer than the quorum of 5" in reason
    # Removing a live validator when one of the others is down: 2 live of 3 still make 2.
    assert vote_hazard((A, B, C, D), D, False, live=(A, B, C), allowed=None) is None
    # ...but with two down, what is left cannot seal: 1 live of 3, quorum 2.
    reason = vote_hazard((A, B, C, D), D, False, live=(A,), allowed=None)
    assert reason is not None and "1 live validator(s) of 3" in reason
    assert "no validator" in (vote_hazard((A,), A, False, live=(A,), allowed=None) or "")


def test_vote_hazard_lets_votes_that_change_nothing_through() -> None:
    assert vote_hazard((A, B, C, D), A, True, live=(), allowed=()) is None
    assert vote_hazard((A, B, C, D), E, False, live=(), allowed=()) is None
