"""The engine's proposal decoder must agree with `decode_message`, or decline."""

from __future__ import annotations

from typing import cast

import pytest
import rlp

from node.chain.executor import tx_hash_of
from node.consensus.block_codec import decode_message, decode_proposal
from node.consensus.qbft.messages import (
    PROPOSAL,
    MessageError,
    Prepare,
    Proposal,
    RoundChange,
)
from tests.test_qbft_messages import KEYS, sample_block


def same(fast: Proposal, general: Proposal) -> None:
    assert fast.author == general.author
    assert fast.signed.signature == general.signed.signature
    assert (fast.height, fast.round) == (general.height, general.round)
    assert fast.block.header == general.block.header
    assert [tx.encode() for tx in fast.block.transactions] == [
        tx.encode() for tx in general.block.transactions
    ]
    assert fast.encode() == general.encode()
    assert rlp.encode(fast.signed.to_rlp()) == rlp.encode(general.signed.to_rlp())


@pytest.mark.parametrize("with_typed", [False, True])
def test_a_proposal_decodes_as_the_general_decoder_decodes_it(with_typed: bool) -> None:
    data = Proposal.create(KEYS[1], 7, 0, sample_block(with_typed)).encode()
    fast = decode_proposal(data, lambda tx_hash: None)
    assert fast is not None
    same(fast, cast(Proposal, decode_message(PROPOSAL, data)))  # a PROPOSAL is a Proposal


def test_pooled_transactions_are_reused_not_decoded_again() -> None:
    block = sample_block()
    pooled = {tx_hash_of(tx): tx for tx in block.transactions[1:]}
    data = Proposal.create(KEYS[2], 3, 0, block).encode()
    fast = decode_proposal(data, pooled.get)
    assert fast is not None
    assert fast.block.transactions[0] not in pooled.values()
    assert fast.block.transactions[1:] == block.transactions[1:]
    same(fast, cast(Proposal, decode_message(PROPOSAL, data)))  # a PROPOSAL is a Proposal


def test_other_shapes_and_bad_input_are_left_to_the_general_decoder() -> None:
    block = sample_block()
    change = RoundChange.create(KEYS[0], 3, 1)
    prepare = Prepare.create(KEYS[0], 3, 0, b"\x01" * 32)
    justified = Proposal.create(KEYS[1], 3, 1, block, [change.signed], [prepare.signed])
    assert decode_proposal(justified.encode(), lambda tx_hash: None) is None
    data = bytearray(Proposal.create(KEYS[1], 3, 0, block).encode())
    assert decode_proposal(bytes(data[:-1]), lambda tx_hash: None) is None
    assert decode_proposal(bytes(data) + b"\x00", lambda tx_hash: None) is None
    data[-70] ^= 0x01  # inside the signature's r or s
    with pytest.raises(MessageError):
        decode_message(PROPOSAL, bytes(data))
    assert decode_proposal(bytes(data), lambda tx_hash: None) is None
