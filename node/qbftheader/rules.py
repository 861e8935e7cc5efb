"""QBFT's answers to what the chain asks of its consensus (`node.chain.rules.ConsensusRules`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_typing import Hash32

from node.qbftheader.hashing import onchain_hash
from node.qbftheader.tally import VoteTally
from node.qbftheader.verify import verify_sealed_header

if TYPE_CHECKING:  # py-evm's types only: importing `eth` at run time loads the whole EVM
    from eth.abc import BlockHeaderAPI


class QbftRules:
    """Block hashes without seals or round, a header-vote tally, seals by a quorum."""

    def block_hash(self, header: BlockHeaderAPI) -> Hash32:
        return onchain_hash(header)

    def genesis_tally(self, validators: Sequence[bytes]) -> VoteTally:
        return VoteTally(tuple(sorted(validators)))

    def tally_after(self, tally: VoteTally, header: BlockHeaderAPI, epoch_length: int) -> VoteTally:
        return tally.after(header, epoch_length)

    def verify_sealed(self, header: BlockHeaderAPI, validators: Sequence[bytes]) -> None:
        verify_sealed_header(header, validators)


QBFT_RULES = QbftRules()
