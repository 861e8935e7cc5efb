"""`ChainReader`: blocks, transactions, receipts and proofs as committed, for every client edge.

"Latest" is the head pointer stored in the last committed batch, not `Chain.tip`: `commit`
writes its batch from a worker thread and swaps `tip` only afterwards, so in between a reader
on the event loop could find a new block's receipt yet be handed the previous head (a client
that read its receipt, then called a contract, saw state from before its own transaction).
The stored pointer is written in the same batch as the block, so it never lags what a reader
can find.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth.abc import BlockHeaderAPI

from node.chain.chain import Chain
from node.chain.head import ChainHead
from node.chain.vm import decode_transaction
from node.query.proofs import AccountProof, prove
from node.storage.chainstore import TxHashes
from node.storage.records import ReceiptRecord, TransactionRecord

BlockWhich = str | int | bytes
"""A block as the edges name it: a tag ("latest", "earliest", ...), a number, or a hash."""


class ChainReader:
    """Read-only views over one `Chain`; cheap to make, holds no state of its own."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.store = chain.store

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    def head(self) -> ChainHead:
        """The committed head (see the module's note on why not `Chain.tip` as it stands)."""
        tip = self.chain.tip
        stored = self.store.head_hash()
        if stored is None or stored == tip.hash:
            return tip
        header = self.chain.header_by_hash(stored)
        return tip if header is None else ChainHead(header, stored)

    def block(self, which: BlockWhich) -> BlockHeaderAPI | None:
        """The header `which` names; every tag but "earliest" is the head (Tally's blocks are
        final when committed, so safe = finalized = latest, and "pending" is latest too)."""
        if isinstance(which, bytes):
            return self.chain.header_by_hash(which)
        if isinstance(which, int):
            return self.chain.header_by_number(which)
        if which == "earliest":
            return self.chain.header_by_number(0)
        return self.head().header

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        return self.chain.header_by_hash(block_hash)

    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        return self.chain.header_by_number(number)

    def canonical(self, number: int) -> tuple[BlockHeaderAPI, bytes] | None:
        """The canonical block at `number` as (header, hash), or None past the head."""
        block_hash = self.store.canonical_hash(number)
        header = None if block_hash is None else self.chain.header_by_hash(block_hash)
        return None if header is None or block_hash is None else (header, block_hash)

    def is_canonical(self, block_hash: bytes, number: int) -> bool:
        return self.store.canonical_hash(number) == block_hash

    def validators_after(self, block_hash: bytes) -> tuple[bytes, ...]:
        """The validators in force for the child of `block_hash`; KeyError if unknown."""
        return self.chain.validator_tally(block_hash).validators

    def tx_hashes(self, block_hash: bytes) -> TxHashes:
        """The block's transaction hashes in order (empty for an unknown block)."""
        return self.store.block_transactions(block_hash)

    def transaction(self, tx_hash: bytes) -> TransactionRecord | None:
        return self.store.transaction(tx_hash)

    def receipt(self, tx_hash: bytes) -> ReceiptRecord | None:
        return self.store.receipt(tx_hash)

    def recipient(self, tx_hash: bytes, record: TransactionRecord) -> bytes | None:
        """The `to` of the stored transaction `record` (None for a creation): kept for the
        latest transactions, decoded from the raw transaction for older ones (~30 us)."""
        kept = self.store.kept(tx_hash)
        if kept is not None:
            return kept.to
        return decode_transaction(record.raw).to or None

    def proof(self, header: BlockHeaderAPI, address: bytes, slots: Sequence[bytes]) -> AccountProof:
        """EIP-1186 proof of `address` and its 32-byte `slots` after block `header`
        (nothing is pruned, so every committed block is provable)."""
        return prove(self.store.store, header.state_root, address, slots)
