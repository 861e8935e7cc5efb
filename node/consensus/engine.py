"""The port between consensus and the rest of the node.

An engine decides *when* a block is made and *which* block is final; the chain (`Chain`)
executes and commits it, the pool supplies transactions. The single-validator engine below is
QBFT with n = 1: its own proposal, prepare and commit make a quorum, so a block is final the
moment it is sealed. The multi-validator QBFT engine implements the same `ConsensusEngine`.
"""

from __future__ import annotations

from typing import Protocol


class ConsensusEngine(Protocol):
    async def run(self) -> None:
        """Produce or follow blocks until cancelled; cancellation lets the current block finish."""

    def transactions_pending(self) -> None:
        """The pool has executable transactions: a proposer may want to build."""
