"""The JSON shapes of blocks, transactions, receipts and logs, as Ethereum clients parse them.

Field names and encodings follow the execution-apis spec (and what geth returns), because
web3.py, ethers and cast validate them strictly.
"""

from __future__ import annotations

from typing import Any, cast

from eth.abc import BlockHeaderAPI, LegacyTransactionFieldsAPI, SignedTransactionAPI
from eth.vm.forks.berlin.transactions import TypedTransaction
from eth_bloom import BloomFilter

from node.chain.vm import decode_transaction, prague_header
from node.storage.records import LogRecord, ReceiptRecord, TransactionRecord

ZERO_BLOOM = "0x" + "00" * 256
EMPTY_UNCLES_HASH = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"


def hexq(value: int) -> str:
    return hex(value)


def hexd(value: bytes) -> str:
    return "0x" + value.hex()


def block_json(
    header: BlockHeaderAPI,
    block_hash: bytes,
    transactions: list[Any],
    size: int,
) -> dict[str, Any]:
    """A block; `transactions` are hashes (hex) or full transaction objects."""
    prague = prague_header(header)
    return {
        "number": hexq(header.block_number),
        "hash": hexd(block_hash),
        "parentHash": hexd(header.parent_hash),
        "nonce": hexd(header.nonce),
        "sha3Uncles": hexd(header.uncles_hash),
        "logsBloom": hexd(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": hexd(header.transaction_root),
        "stateRoot": hexd(header.state_root),
        "receiptsRoot": hexd(header.receipt_root),
        "miner": hexd(header.coinbase),
        "difficulty": hexq(header.difficulty),
        "totalDifficulty": hexq(header.difficulty),
        "extraData": hexd(header.extra_data),
        "size": hexq(size),
        "gasLimit": hexq(header.gas_limit),
        "gasUsed": hexq(header.gas_used),
        "timestamp": hexq(header.timestamp),
        "mixHash": hexd(header.mix_hash),
        "baseFeePerGas": hexq(prague.base_fee_per_gas),
        "withdrawalsRoot": hexd(prague.withdrawals_root),
        "withdrawals": [],
        "blobGasUsed": hexq(header.blob_gas_used),
        "excessBlobGas": hexq(header.excess_blob_gas),
        "parentBeaconBlockRoot": hexd(prague.parent_beacon_block_root),
        "requestsHash": hexd(prague.requests_hash),
        "uncles": [],
        "transactions": transactions,
    }


def transaction_json(
    tx: SignedTransactionAPI,
    tx_hash: bytes,
    sender: bytes,
    location: TransactionRecord | None,
    base_fee: int | None = None,
) -> dict[str, Any]:
    """A transaction, mined (`location` given) or pending (block fields null)."""
    result: dict[str, Any] = {
        "hash": hexd(tx_hash),
        "nonce": hexq(tx.nonce),
        "blockHash": None if location is None else hexd(location.block_hash),
        "blockNumber": None if location is None else hexq(location.block_number),
        "transactionIndex": None if location is None else hexq(location.index),
        "from": hexd(sender),
        "to": hexd(tx.to) if tx.to else None,
        "value": hexq(tx.value),
        "gas": hexq(tx.gas),
        "input": hexd(tx.data),
        "r": hexq(tx.r),
        "s": hexq(tx.s),
    }
    if tx.type_id is None:
        result["type"] = "0x0"
        result["gasPrice"] = hexq(tx.gas_price)
        # SignedTransactionAPI covers every type, so it lacks the legacy-only `v`.
        result["v"] = hexq(cast(LegacyTransactionFieldsAPI, tx).v)
        if tx.chain_id is not None:
            result["chainId"] = hexq(tx.chain_id)
        return result
    result["type"] = hexq(tx.type_id)
    # A typed transaction always has a chain id; SignedTransactionAPI's is optional (legacy).
    result["chainId"] = hexq(cast(TypedTransaction, tx).chain_id)
    result["v"] = hexq(tx.y_parity)
    result["yParity"] = hexq(tx.y_parity)
    result["accessList"] = access_list_json(tx.access_list)
    if tx.type_id == 4:
        result["authorizationList"] = [
            {
                "chainId": hexq(auth.chain_id),
                "address": hexd(auth.address),
                "nonce": hexq(auth.nonce),
                "yParity": hexq(auth.y_parity),
                "r": hexq(auth.r),
                "s": hexq(auth.s),
            }
            for auth in cast(Any, tx).authorization_list
        ]
    if tx.type_id == 1:
        result["gasPrice"] = hexq(tx.gas_price)
    else:
        result["maxFeePerGas"] = hexq(tx.max_fee_per_gas)
        result["maxPriorityFeePerGas"] = hexq(tx.max_priority_fee_per_gas)
        price = tx.max_fee_per_gas
        if base_fee is not None:
            price = min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)
        result["gasPrice"] = hexq(price)
    return result


def access_list_json(entries: Any) -> list[dict[str, Any]]:
    """An access list as transaction objects carry it: storage keys as 32-byte hex."""
    return [
        {"address": hexd(address), "storageKeys": [hexd(k.to_bytes(32, "big")) for k in keys]}
        for address, keys in entries
    ]


def mined_transaction_json(
    tx_hash: bytes, record: TransactionRecord, base_fee: int | None
) -> dict[str, Any]:
    return transaction_json(
        decode_transaction(record.raw), tx_hash, record.sender, record, base_fee
    )


def log_json(
    log: LogRecord, record: TransactionRecord, tx_hash: bytes, log_index: int
) -> dict[str, Any]:
    return {
        "address": hexd(log.address),
        "topics": [hexd(topic) for topic in log.topics],
        "data": hexd(log.data),
        "blockNumber": hexq(record.block_number),
        "blockHash": hexd(record.block_hash),
        "transactionHash": hexd(tx_hash),
        "transactionIndex": hexq(record.index),
        "logIndex": hexq(log_index),
        "removed": False,
    }


def logs_bloom(logs: list[LogRecord]) -> str:
    if not logs:
        return ZERO_BLOOM
    bloom = BloomFilter()
    for log in logs:
        bloom.add(log.address)
        for topic in log.topics:
            bloom.add(topic)
    return hexd(int(bloom).to_bytes(256, "big"))


def receipt_json(
    tx_hash: bytes, record: TransactionRecord, receipt: ReceiptRecord, to: bytes | None
) -> dict[str, Any]:
    return {
        "transactionHash": hexd(tx_hash),
        "transactionIndex": hexq(record.index),
        "blockHash": hexd(record.block_hash),
        "blockNumber": hexq(record.block_number),
        "from": hexd(record.sender),
        "to": hexd(to) if to else None,
        "cumulativeGasUsed": hexq(receipt.cumulative_gas_used),
        "gasUsed": hexq(receipt.gas_used),
        "effectiveGasPrice": hexq(receipt.effective_gas_price),
        "contractAddress": hexd(receipt.contract_address) if receipt.contract_address else None,
        "logs": [
            log_json(log, record, tx_hash, receipt.first_log_index + offset)
            for offset, log in enumerate(receipt.logs)
        ],
        "logsBloom": logs_bloom(list(receipt.logs)),
        "type": hexq(receipt.tx_type),
        "status": hexq(receipt.status),
    }
