"""`qbft_` JSON-RPC methods as Besu exposes them: validator votes and validator sets.

Proposing and discarding votes, and the list of this node's pending proposals, are admin
methods (the authenticated admin listener only). A proposal that would halt the chain, voting
in a node that may not run here or leaving fewer live validators than a quorum, is refused
with the reason unless the call passes `force` = true as a third param (`vote_hazard`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_utils import to_checksum_address

from node.chain.chain import Chain
from node.consensus.voting import VoteProposals, vote_hazard
from node.qbftheader.extra_data import QbftExtraData
from node.rpc import params as p
from node.rpc.dispatch import rpc_method
from node.rpc.errors import ServerError
from node.rpc.eth import BlockResolver


class QbftApi:
    """`live_nodes()` are this node and its connected peers now; `allowed_nodes()` the nodes
    that may run on this network (None: no list, as on a dev chain)."""

    def __init__(
        self,
        chain: Chain,
        proposals: VoteProposals,
        live_nodes: Callable[[], frozenset[bytes]],
        allowed_nodes: Callable[[], frozenset[bytes] | None],
    ) -> None:
        self.chain = chain
        self.proposals = proposals
        self.live_nodes = live_nodes
        self.allowed_nodes = allowed_nodes
        self.blocks = BlockResolver(chain)

    @rpc_method("qbft_proposeValidatorVote", 2, 3, admin=True)
    def propose_validator_vote(self, address: Any, add: Any, force: Any) -> bool:
        subject, adding = p.address(address), p.boolean(add, "add")
        forced = force is not None and p.boolean(force, "force")
        if not forced:
            validators = self.chain.validator_tally(self.chain.head_hash).validators
            hazard = vote_hazard(
                validators, subject, adding, self.live_nodes(), self.allowed_nodes()
            )
            if hazard is not None:
                raise ServerError(f"vote refused: {hazard} (pass true as a third param to force)")
        self.proposals.propose(subject, adding)
        return True

    @rpc_method("qbft_discardValidatorVote", 1, admin=True)
    def discard_validator_vote(self, address: Any) -> bool:
        self.proposals.discard(p.address(address))
        return True

    @rpc_method("qbft_getPendingVotes", admin=True)
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
