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
        self._handed_out: set[bytes] = set()

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._blocks

    def keep(self, block_hash: bytes, pending: PendingBlock) -> None:
        self._blocks[block_hash] = pending
        self._handed_out.discard(block_hash)
        while len(self._blocks) > self.limit:
            oldest = next(iter(self._blocks))
            del self._blocks[oldest]
            self._handed_out.discard(oldest)

    def to_stage(self) -> list[PendingBlock]:
        """Kept blocks not returned here before: each is handed to `Chain.stage` once."""
        fresh = [block for key, block in self._blocks.items() if key not in self._handed_out]
        self._handed_out.update(self._blocks)
        return fresh

    def get(self, block_hash: bytes) -> PendingBlock | None:
        return self._blocks.get(block_hash)

    def pop(self, block_hash: bytes) -> PendingBlock | None:
        self._handed_out.discard(block_hash)
        return self._blocks.pop(block_hash, None)

    def clear(self) -> None:
        """Forget every execution: the head moved, they all built on an old parent."""
        self._blocks.clear()
        self._handed_out.clear()
