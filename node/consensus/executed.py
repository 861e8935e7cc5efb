"""Blocks this validator executed while deciding them, for the one write that follows.

A validator executes a proposal to validate it (or accepts it from its proposer's state
diff); when the block is decided it is written from that execution, whether the decision
reaches the node as its own commit (`QbftEngine`) or as the block from a peer (block sync).
The engine's block port fills this and block sync reads it: one object both are given at
construction, so neither reaches into the other.
"""

from __future__ import annotations

from node.chain.chain import PendingBlock

MAX_EXECUTED_BLOCKS = 16
"""Executions kept (a few proposals per height at most, normally one)."""


class ExecutedBlocks:
    """Executed, uncommitted blocks by on-chain hash, oldest dropped beyond a bound."""

    def __init__(self, limit: int = MAX_EXECUTED_BLOCKS) -> None:
        self.limit = limit
        self._blocks: dict[bytes, PendingBlock] = {}

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._blocks

    def keep(self, block_hash: bytes, pending: PendingBlock) -> None:
        self._blocks[block_hash] = pending
        while len(self._blocks) > self.limit:
            self._blocks.pop(next(iter(self._blocks)))

    def get(self, block_hash: bytes) -> PendingBlock | None:
        return self._blocks.get(block_hash)

    def pop(self, block_hash: bytes) -> PendingBlock | None:
        return self._blocks.pop(block_hash, None)

    def clear(self) -> None:
        """Forget every execution: the head moved, they all built on an old parent."""
        self._blocks.clear()
