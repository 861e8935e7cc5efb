"""geth's raw reads: `debug_getRawHeader`, `debug_getRawBlock`, `debug_getRawReceipts`,
`debug_getRawTransaction`, the consensus encodings of what the node stores.

They reveal nothing the `eth_` methods do not (every field is in a block, transaction or
receipt object), so they are public, in the `debug` namespace. The header is the one the
chain stores and links to: a QBFT header whose extraData carries the commit seals, as Besu's
`debug_getRawHeader` returns it (its hash is therefore not the block hash, which QBFT takes
over the unsealed form). Encodings come from py-evm's block, transaction and receipt classes.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, ReceiptAPI
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.byzantium.constants import (
    EIP658_TRANSACTION_STATUS_CODE_FAILURE,
    EIP658_TRANSACTION_STATUS_CODE_SUCCESS,
)
from eth.vm.forks.prague.blocks import PragueBlock
from eth.vm.forks.prague.receipts import PragueTypedReceipt

from node.chain.chain import Chain
from node.chain.vm import decode_transaction
from node.qbftheader.hashing import onchain_hash
from node.query.reader import ChainReader
from node.rpc import params as p
from node.rpc import views
from node.rpc.dispatch import rpc_method
from node.rpc.errors import ServerError
from node.storage.records import ReceiptRecord
from node.txpool.pool import TxPool


class DebugRawApi:
    """The four raw reads over the chain store (and the pool, for a pending transaction)."""

    def __init__(self, chain: Chain, pool: TxPool) -> None:
        self.chain = chain
        self.store = chain.store
        self.pool = pool

    def _header(self, block: Any) -> BlockHeaderAPI:
        header = ChainReader(self.chain).block(p.block_or_hash(block))
        if header is None:
            raise ServerError("block not found")
        return header

    @rpc_method("debug_getRawHeader", 1)
    def raw_header(self, block: Any) -> str:
        return views.hexd(rlp.encode(self._header(block)))

    @rpc_method("debug_getRawBlock", 1)
    def raw_block(self, block: Any) -> str:
        header = self._header(block)
        transactions = []
        for tx_hash in self.store.block_tx_hashes(onchain_hash(header)):
            record = self.store.transaction(tx_hash)
            if record is not None:
                transactions.append(decode_transaction(record.raw))
        return views.hexd(rlp.encode(PragueBlock(header, transactions, [], [])))

    @rpc_method("debug_getRawReceipts", 1)
    def raw_receipts(self, block: Any) -> list[str]:
        header = self._header(block)
        receipts = []
        for tx_hash in self.store.block_tx_hashes(onchain_hash(header)):
            record = self.store.receipt(tx_hash)
            if record is not None:
                receipts.append(views.hexd(_receipt(record).encode()))
        return receipts

    @rpc_method("debug_getRawTransaction", 1)
    def raw_transaction(self, tx_hash: Any) -> str | None:
        key = p.hash32(tx_hash)
        record = self.store.transaction(key)
        if record is not None:
            return views.hexd(record.raw)
        pooled = self.pool.get(key)
        return None if pooled is None else views.hexd(pooled.raw)


def _receipt(record: ReceiptRecord) -> ReceiptAPI:
    """The consensus receipt (EIP-658 status, cumulative gas, bloom, logs; typed: EIP-2718)."""
    status = (
        EIP658_TRANSACTION_STATUS_CODE_SUCCESS
        if record.status
        else EIP658_TRANSACTION_STATUS_CODE_FAILURE
    )
    logs = [
        Log(log.address, tuple(int.from_bytes(t, "big") for t in log.topics), log.data)
        for log in record.logs
    ]
    receipt = Receipt(status, record.cumulative_gas_used, logs)
    return receipt if record.tx_type == 0 else PragueTypedReceipt(record.tx_type, receipt)
