"""Typed reads and writes of blocks, transactions and receipts over a `KeyValueStore`.

Writes go into a batch the caller commits (a block is one batch); reads go to the store and
see only committed blocks. Headers are keyed by their on-chain (QBFT) hash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import rlp
from eth.abc import BlockHeaderAPI
from eth.vm.forks.prague.headers import PragueBlockHeader

from node.storage import schema
from node.storage.records import (
    ReceiptRecord,
    TransactionRecord,
    decode_receipt_record,
    decode_transaction_record,
    encode_record,
)
from node.storage.store import KeyValueStore, StoreBatch


class TxHashes(Sequence[bytes]):
    """A block's transaction hashes, sliced from its stored body on demand: blocks can hold
    thousands, and a history page needs one or two of them."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __len__(self) -> int:
        return len(self._body) // 32

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        start = (index % len(self)) * 32
        return self._body[start : start + 32]


BlockRecords = list[tuple[bytes, TransactionRecord, ReceiptRecord, bytes]]
"""A block's (tx hash, tx record, receipt record, recipient or created address) in order."""


@dataclass(frozen=True, slots=True)
class KeptRecords:
    """A recent transaction's records, and its `to` (None: a creation), which a receipt
    answer needs and the records hold only inside the raw transaction."""

    transaction: TransactionRecord
    receipt: ReceiptRecord
    to: bytes | None


RECENT_RECORDS = 5_000
"""Transactions whose records are kept decoded after their block commits (an ERC-20 transfer's
two records: about 1.2 KB, so 6 MiB in all)."""


class ChainStore:
    """The block database: one instance per node, shared by the chain and the readers.

    The records of the latest `recent_records` transactions are also kept as objects
    (`remember`): clients poll a receipt right after its block, and that read is the hottest
    a node serves. Read from LevelDB on the event loop, it waits for the interpreter lock the
    block builder holds (plyvel lets go of it for the read) and decodes RLP; with 1 s blocks
    that was a third of the loop's time. Records never change once committed, so the copy
    cannot go stale.
    """

    def __init__(self, store: KeyValueStore, recent_records: int = RECENT_RECORDS) -> None:
        self.store = store
        self.recent_records = recent_records
        self._recent: dict[bytes, KeptRecords] = {}
        self._recent_order: deque[bytes] = deque()

    def new_batch(self) -> StoreBatch:
        return StoreBatch(self.store)

    def commit(self, batch: StoreBatch) -> None:
        self.store.commit(batch.pending)

    def head_hash(self) -> bytes | None:
        return self.store.get(schema.HEAD_KEY)

    def genesis_document(self) -> bytes | None:
        return self.store.get(schema.GENESIS_KEY)

    def genesis_sha256(self) -> bytes | None:
        """sha256 of the genesis file this chain last ran from (`node.chain.genesis_file`)."""
        return self.store.get(schema.GENESIS_SHA256_KEY)

    def header(self, block_hash: bytes) -> BlockHeaderAPI | None:
        data = self.store.get(schema.header_key(block_hash))
        return None if data is None else rlp.decode(data, sedes=PragueBlockHeader)

    def canonical_hash(self, number: int) -> bytes | None:
        return self.store.get(schema.canonical_hash_key(number))

    def block_tx_hashes(self, block_hash: bytes) -> list[bytes]:
        return list(self.block_transactions(block_hash))

    def block_transactions(self, block_hash: bytes) -> TxHashes:
        """The block's transaction hashes, read once and split only where indexed."""
        return TxHashes(self.store.get(schema.body_key(block_hash)) or b"")

    def transaction(self, tx_hash: bytes) -> TransactionRecord | None:
        recent = self._recent.get(tx_hash)
        if recent is not None:
            return recent.transaction
        data = self.store.get(schema.transaction_key(tx_hash))
        return None if data is None else decode_transaction_record(data)

    def receipt(self, tx_hash: bytes) -> ReceiptRecord | None:
        recent = self._recent.get(tx_hash)
        if recent is not None:
            return recent.receipt
        data = self.store.get(schema.receipt_key(tx_hash))
        return None if data is None else decode_receipt_record(data)

    def kept(self, tx_hash: bytes) -> KeptRecords | None:
        """The records of a transaction among the latest `recent_records`, else None."""
        return self._recent.get(tx_hash)

    def remember(self, transactions: BlockRecords) -> None:
        """Keep a committed block's records (`save_block`'s list) as the latest; call it only
        once the batch that wrote them is committed, so nothing uncommitted is ever read.

        One writer (the thread committing blocks); readers on other threads only look up.
        """
        for tx_hash, tx_record, receipt_record, counterparty in transactions:
            # The counterparty is the recipient, or the created address for a creation.
            to = None if receipt_record.contract_address else counterparty or None
            self._recent[tx_hash] = KeptRecords(tx_record, receipt_record, to)
            self._recent_order.append(tx_hash)
        while len(self._recent_order) > self.recent_records:
            self._recent.pop(self._recent_order.popleft(), None)

    def validator_tally(self, block_hash: bytes) -> bytes | None:
        """The encoded `VoteTally` after `block_hash` (see `node.qbftheader.tally`)."""
        return self.store.get(schema.validators_key(block_hash))

    @staticmethod
    def save_validator_tally(batch: StoreBatch, block_hash: bytes, tally: bytes) -> None:
        batch[schema.validators_key(block_hash)] = tally

    @staticmethod
    def save_genesis_document(batch: StoreBatch, document: bytes) -> None:
        batch[schema.GENESIS_KEY] = document

    @staticmethod
    def save_genesis_sha256(batch: StoreBatch, digest: bytes) -> None:
        batch[schema.GENESIS_SHA256_KEY] = digest

    @staticmethod
    def save_block(
        batch: StoreBatch,
        block_hash: bytes,
        header: BlockHeaderAPI,
        transactions: BlockRecords,
    ) -> None:
        """Stage a block as the new head: header, body, per-tx records and account index.

        `transactions` holds (tx hash, tx record, receipt record, recipient or created address).
        """
        batch[schema.header_key(block_hash)] = rlp.encode(header)
        batch[schema.canonical_hash_key(header.block_number)] = block_hash
        batch[schema.body_key(block_hash)] = b"".join(item[0] for item in transactions)
        for tx_hash, tx_record, receipt_record, counterparty in transactions:
            batch[schema.transaction_key(tx_hash)] = encode_record(tx_record)
            batch[schema.receipt_key(tx_hash)] = encode_record(receipt_record)
            position = (tx_record.block_number, tx_record.index)
            batch[schema.account_tx_key(tx_record.sender, *position)] = b""
            if counterparty and counterparty != tx_record.sender:
                batch[schema.account_tx_key(counterparty, *position)] = b""
        batch[schema.HEAD_KEY] = block_hash
