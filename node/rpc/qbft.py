"""`qbft_` JSON-RPC methods as Besu exposes them: validator votes and validator sets."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from node.chain.chain import Chain
from node.consensus.extra_data import QbftExtraData
from node.consensus.voting import VoteProposals
from node.rpc import params as p
from node.rpc.dispatch import rpc_method
from node.rpc.errors import ServerError
from node.rpc.eth import BlockResolver


class QbftApi:
    def __init__(self, chain: Chain, proposals: VoteProposals) -> None:
        self.chain = chain
        self.proposals = proposals
        self.blocks = BlockResolver(chain)

    @rpc_method("qbft_proposeValidatorVote", 2)
    def propose_validator_vote(self, address: Any, add: Any) -> bool:
        self.proposals.propose(p.address(address), p.boolean(add, "add"))
        return True

    @rpc_method("qbft_discardValidatorVote", 1)
    def discard_validator_vote(self, address: Any) -> bool:
        self.proposals.discard(p.address(address))
        return True

    @rpc_method("qbft_getPendingVotes")
    def pending_votes(self) -> dict[str, bool]:
        return {to_checksum_address(a): add for a, add in self.proposals.pending().items()}

    @rpc_method("qbft_getValidatorsByBlockNumber", 1)
    def validators_by_number(self, block: Any) -> list[str]:
        header = self.blocks.find(p.block_tag(block))
        if header is None:
            raise ServerError("header not found")
        return _validators(header.extra_data)

    @rpc_method("qbft_getValidatorsByBlockHash", 1)
    def validators_by_hash(self, block_hash: Any) -> list[str]:
        header = self.chain.header_by_hash(p.hash32(block_hash))
        if header is None:
            raise ServerError("header not found")
        return _validators(header.extra_data)


def _validators(extra_data: bytes) -> list[str]:
    """The validators a block lists in its extraData: the set that sealed it."""
    return [to_checksum_address(v) for v in QbftExtraData.decode(extra_data).validators]
