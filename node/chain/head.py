"""The chain's head as one immutable value.

`Chain.commit` runs in a worker thread while readers run on the event loop. Keeping the head
header and its hash in two attributes let a reader see the new header with the old hash (or
the reverse); one frozen value swapped in a single assignment cannot be seen half-moved.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import BlockHeaderAPI


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A committed block's header with its on-chain (QBFT) hash."""

    header: BlockHeaderAPI
    hash: bytes

    @property
    def number(self) -> int:
        return self.header.block_number

    @property
    def timestamp(self) -> int:
        return self.header.timestamp
