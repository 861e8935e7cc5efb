"""py-evm's block codec for QBFT messages: the edge where consensus meets the EVM's types.

The QBFT core (`node.consensus.qbft`) decodes messages with whatever `BlockCodec` it is given,
so it never imports py-evm; the engine decodes with this one: Prague headers and this chain's
transaction builder (`node.chain.vm`).
"""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth.vm.forks.prague.headers import PragueBlockHeader

from node.chain.vm import decode_transaction
from node.consensus import proposal_decoding
from node.consensus.qbft import messages
from node.consensus.qbft.messages import Proposal, QbftMessage


class PragueBlockCodec:
    """Prague headers and typed or legacy transactions, as `node.chain` stores them."""

    def decode_header(self, items: list[Any]) -> BlockHeaderAPI:
        return PragueBlockHeader.deserialize(items)

    def decode_transaction(self, raw: bytes) -> SignedTransactionAPI:
        return decode_transaction(raw)


PRAGUE_BLOCKS = PragueBlockCodec()


def decode_message(code: int, data: bytes) -> QbftMessage:
    """`messages.decode_message` with this chain's blocks."""
    return messages.decode_message(code, data, PRAGUE_BLOCKS)


def decode_proposal(data: bytes, known: proposal_decoding.KnownTransaction) -> Proposal | None:
    """`proposal_decoding.decode_proposal` with this chain's blocks."""
    return proposal_decoding.decode_proposal(data, known, PRAGUE_BLOCKS)
