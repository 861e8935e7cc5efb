"""A genesis file as a node reads it once: the chain it describes and the sha256 of its bytes.

A start needs the parsed genesis more than once (its chain id before the datadir is touched,
`tally run`'s refusals, block 0 or the check that the datadir holds this chain), and parsing a
1,000,000-account genesis takes some 15 s (issue 16), so it is read once and handed on. The
digest names the file cheaply: a datadir records the one its chain was written from
(`node.chain.chain.Chain`), and keeps the genesis report under it (`node.genesis.kept_report`),
so a restart on the same bytes compares 32 bytes instead of two parsed documents.

Block 0 is built at most once per start too: a first `tally run` builds it in memory to inspect
what it grants (`node.genesis.inspect`), and the node's chain then writes those same state
writes into its datadir (`take_block_zero`) instead of building them again, which for a
1,000,000-account genesis is minutes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from node.chain.genesis import Genesis, GenesisBlock


@dataclass(slots=True)
class GenesisFile:
    """One genesis file, read and parsed once, its block 0 built at most once."""

    sha256: bytes
    """The digest of the file's bytes as read: other bytes (even of the same chain) differ."""
    genesis: Genesis = field(repr=False)
    _block_zero: GenesisBlock | None = field(default=None, repr=False, compare=False)

    @classmethod
    def read(cls, path: Path) -> GenesisFile:
        """Read and parse `path` (raises `OSError`, or `GenesisError` for a bad document)."""
        data = path.read_bytes()
        return cls(hashlib.sha256(data).digest(), Genesis.loads(data, path))

    def block_zero(self) -> GenesisBlock:
        """Block 0 of this genesis, built on the first call and kept until taken."""
        if self._block_zero is None:
            self._block_zero = self.genesis.build()
        return self._block_zero

    def take_block_zero(self) -> GenesisBlock | None:
        """Block 0 if it was built on this start, handed over once: its state writes are the
        whole genesis state, too much to keep once the chain has written them."""
        block, self._block_zero = self._block_zero, None
        return block
