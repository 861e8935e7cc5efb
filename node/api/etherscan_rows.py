"""Chain records in the shapes Etherscan's API returns them: every value a string, numbers in
decimal (getLogs: in hex, zero as "0x", as Etherscan writes them), addresses in lower case,
"" for an absent address, and the fields in Etherscan's order.

`functionName` names the selectors of the contracts Tally ships (`contracts/artifacts`) as
Etherscan names those of verified contracts, `transfer(address to, uint256 value)`; any other
selector gets "" (an unverified contract on Etherscan).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eth.abc import SignedTransactionAPI
from eth_utils import function_signature_to_4byte_selector

from contracts import artifact_names, load_artifact
from node.domain.indexes import InternalTransaction, TokenTransfer
from node.storage.records import LogRecord, ReceiptRecord, TransactionRecord


def hexd(value: bytes) -> str:
    return "0x" + value.hex()


def etherscan_hex(value: int) -> str:
    """Etherscan's getLogs quantities: hex without leading zeros, and "0x" for zero."""
    return "0x" if value == 0 else hex(value)


def _signature(entry: dict[str, Any]) -> tuple[str, str]:
    types = [item["type"] for item in entry.get("inputs", [])]
    named = [
        f"{item['type']} {item['name']}" if item.get("name") else item["type"]
        for item in entry.get("inputs", [])
    ]
    name = entry["name"]
    return f"{name}({','.join(types)})", f"{name}({', '.join(named)})"


@cache
def _function_names() -> dict[bytes, str]:
    names: dict[bytes, str] = {}
    for artifact in artifact_names():
        for entry in load_artifact(artifact)["abi"]:
            if entry.get("type") != "function":
                continue
            canonical, shown = _signature(entry)
            names.setdefault(function_signature_to_4byte_selector(canonical), shown)
    return names


def method_fields(data: bytes) -> dict[str, str]:
    """`methodId` (the first four bytes of the input, "0x" for none) and `functionName`."""
    selector = data[:4]
    name = _function_names().get(selector, "") if len(selector) == 4 else ""
    return {"methodId": hexd(selector), "functionName": name}


def normal_transaction(
    tx: SignedTransactionAPI,
    tx_hash: bytes,
    record: TransactionRecord,
    receipt: ReceiptRecord,
    timestamp: int,
    head: int,
) -> dict[str, str]:
    """A `txlist` row."""
    failed = receipt.status != 1
    return {
        "blockNumber": str(record.block_number),
        "timeStamp": str(timestamp),
        "hash": hexd(tx_hash),
        "nonce": str(tx.nonce),
        "blockHash": hexd(record.block_hash),
        "transactionIndex": str(record.index),
        "from": hexd(record.sender),
        "to": hexd(tx.to) if tx.to else "",
        "value": str(tx.value),
        "gas": str(tx.gas),
        "gasPrice": str(receipt.effective_gas_price),
        "isError": "1" if failed else "0",
        "txreceipt_status": "0" if failed else "1",
        "input": hexd(tx.data),
        "contractAddress": hexd(receipt.contract_address) if receipt.contract_address else "",
        "cumulativeGasUsed": str(receipt.cumulative_gas_used),
        "gasUsed": str(receipt.gas_used),
        "confirmations": str(head - record.block_number + 1),
        **method_fields(tx.data),
    }


def token_transfer(
    row: TokenTransfer,
    tx: SignedTransactionAPI,
    record: TransactionRecord,
    receipt: ReceiptRecord,
    metadata: tuple[str, str, int | None],
    head: int,
) -> dict[str, str]:
    """A `tokentx` row."""
    name, symbol, decimals = metadata
    return {
        "blockNumber": str(row.position.block_number),
        "timeStamp": str(row.timestamp),
        "hash": hexd(row.tx_hash),
        "nonce": str(tx.nonce),
        "blockHash": hexd(record.block_hash),
        "from": hexd(row.sender),
        "contractAddress": hexd(row.token),
        "to": hexd(row.recipient),
        "value": str(row.amount),
        "tokenName": name,
        "tokenSymbol": symbol,
        "tokenDecimal": "" if decimals is None else str(decimals),
        "transactionIndex": str(row.position.tx_index),
        "gas": str(tx.gas),
        "gasPrice": str(receipt.effective_gas_price),
        "gasUsed": str(receipt.gas_used),
        "cumulativeGasUsed": str(receipt.cumulative_gas_used),
        "input": "deprecated",
        **method_fields(tx.data),
        "confirmations": str(head - row.position.block_number + 1),
    }


def internal_transaction(row: InternalTransaction, by_hash: bool = False) -> dict[str, str]:
    """A `txlistinternal` row (by transaction hash, Etherscan leaves out hash and traceId)."""
    item = {
        "blockNumber": str(row.position.block_number),
        "timeStamp": str(row.timestamp),
        "hash": hexd(row.tx_hash),
        "from": hexd(row.sender),
        "to": hexd(row.recipient) if row.recipient else "",
        "value": str(row.value),
        "contractAddress": hexd(row.created) if row.created else "",
        "input": "",
        "type": "create" if row.created else "call",
        "gas": str(row.gas),
        "gasUsed": str(row.gas_used),
        "traceId": row.trace_id,
        "isError": "1" if row.is_error else "0",
        "errCode": row.error,
    }
    if by_hash:
        del item["hash"], item["traceId"]
    return item


def log_entry(
    log: LogRecord,
    record: TransactionRecord,
    receipt: ReceiptRecord,
    tx_hash: bytes,
    log_index: int,
    timestamp: int,
) -> dict[str, Any]:
    """A `getLogs` row."""
    return {
        "address": hexd(log.address),
        "topics": [hexd(topic) for topic in log.topics],
        "data": hexd(log.data),
        "blockNumber": etherscan_hex(record.block_number),
        "blockHash": hexd(record.block_hash),
        "timeStamp": etherscan_hex(timestamp),
        "gasPrice": etherscan_hex(receipt.effective_gas_price),
        "gasUsed": etherscan_hex(receipt.gas_used),
        "logIndex": etherscan_hex(log_index),
        "transactionHash": hexd(tx_hash),
        "transactionIndex": etherscan_hex(record.index),
    }
