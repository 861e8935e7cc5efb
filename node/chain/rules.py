"""What `Chain` needs from the consensus that seals its blocks, and nothing more.

As geth hands its `BlockChain` a `consensus.Engine`, the chain is handed these rules: it never
imports `node.consensus`, whose engines build on the chain. `node.qbftheader.rules.QbftRules`
is the one implementation; the tally type is the header format's (`node.qbftheader.tally`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eth.abc import BlockHeaderAPI
from eth_typing import Hash32

from node.qbftheader.tally import VoteTally


class ConsensusRules(Protocol):
    def block_hash(self, header: BlockHeaderAPI) -> Hash32:
        """The hash clients see and children link to (may differ from the RLP hash)."""
        ...

    def genesis_tally(self, validators: Sequence[bytes]) -> VoteTally:
        """Validators and votes in force for block 1."""
        ...

    def tally_after(self, tally: VoteTally, header: BlockHeaderAPI, epoch_length: int) -> VoteTally:
        """Validators and votes in force for the child of `header`, given its parent's."""
        ...

    def verify_sealed(self, header: BlockHeaderAPI, validators: Sequence[bytes]) -> None:
        """Raise `ValueError` unless `validators` (in force at its height) sealed `header`."""
        ...
