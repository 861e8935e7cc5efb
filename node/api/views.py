"""Chain objects in the REST API's shapes (plain dicts matching `node.api.models`).

Everything here reads committed data only: block headers and bodies, transaction and receipt
records, index rows. The seal check re-derives the signers of a block's commit seals and counts
them against the validators in force at its parent, as block import does.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth_keys.exceptions import BadSignature

from node.api.params import checksum, hexd, iso_time
from node.chain.vm import decode_transaction
from node.domain.contracts import FeeKind
from node.domain.event_decoding import EventDecoder
from node.domain.indexes import (
    HOLD_REASONS,
    FeePayment,
    HeldPayment,
    LogPosition,
    PointsEvent,
    Settlement,
    SettlementEvent,
    TokenTransfer,
)
from node.qbftheader.extra_data import ExtraDataError, QbftExtraData
from node.qbftheader.hashing import onchain_hash, recover_seal_signer
from node.qbftheader.quorum import quorum
from node.query.reader import ChainReader
from node.storage.records import ReceiptRecord, TransactionRecord


def block_summary(reader: ChainReader, header: BlockHeaderAPI, block_hash: bytes) -> dict[str, Any]:
    return {
        "number": header.block_number,
        "hash": hexd(block_hash),
        "parent_hash": hexd(header.parent_hash),
        "timestamp": header.timestamp,
        "time": iso_time(header.timestamp),
        "proposer": checksum(header.coinbase),
        "tx_count": len(reader.tx_hashes(block_hash)),
        "gas_used": header.gas_used,
        "state_root": hexd(header.state_root),
    }


def block_detail(reader: ChainReader, header: BlockHeaderAPI, block_hash: bytes) -> dict[str, Any]:
    summary = block_summary(reader, header, block_hash)
    try:
        extra = QbftExtraData.decode(header.extra_data)
        validators = [checksum(v) for v in extra.validators]
    except ExtraDataError:
        extra, validators = None, []
    return {
        **summary,
        "transactions": [hexd(h) for h in reader.tx_hashes(block_hash)],
        "validators": validators,
        "commit_seals": commit_seals(reader, header, extra),
    }


def commit_seals(
    reader: ChainReader, header: BlockHeaderAPI, extra: QbftExtraData | None
) -> dict[str, Any]:
    """Seal count, the quorum in force, and whether this node's own re-check passes: every
    seal recovers to a distinct validator of the parent's set, at least a quorum of them.
    Genesis is trusted by construction and carries no seals."""
    if header.block_number == 0:
        count = len(extra.seals) if extra is not None else 0
        size = len(extra.validators) if extra is not None else 0
        return {"count": count, "quorum": quorum(size), "valid": True}
    try:
        validators = set(reader.validators_after(header.parent_hash))
    except KeyError:
        validators = set()
    required = quorum(len(validators))
    if extra is None:
        return {"count": 0, "quorum": required, "valid": False}
    signers: set[bytes] = set()
    valid = True
    for seal in extra.seals:
        try:
            signer = recover_seal_signer(header, seal)
        except (BadSignature, ValueError):
            valid = False
            continue
        if signer not in validators or signer in signers:
            valid = False
        signers.add(signer)
    valid = valid and len(signers & validators) >= required
    return {"count": len(extra.seals), "quorum": required, "valid": valid}


def status_of(receipt: ReceiptRecord | None) -> str:
    if receipt is None:
        return "pending"
    return "success" if receipt.status == 1 else "failed"


def transaction_detail(
    tx: SignedTransactionAPI,
    tx_hash: bytes,
    sender: bytes,
    record: TransactionRecord | None,
    receipt: ReceiptRecord | None,
    header: BlockHeaderAPI | None,
    decoder: EventDecoder,
) -> dict[str, Any]:
    """A transaction with its receipt and decoded events (block fields null while pending)."""
    gas_price = tx.max_fee_per_gas if tx.type_id in (2, 4) else tx.gas_price
    block = None
    if record is not None and header is not None:
        block = {
            "number": record.block_number,
            "hash": hexd(record.block_hash),
            "index": record.index,
            "timestamp": header.timestamp,
            "time": iso_time(header.timestamp),
        }
    events = []
    if receipt is not None:
        events = [
            decoder.decode(log, receipt.first_log_index + offset)
            for offset, log in enumerate(receipt.logs)
        ]
        gas_price = receipt.effective_gas_price
    return {
        "hash": hexd(tx_hash),
        "status": status_of(receipt),
        "from": checksum(sender),
        "to": checksum(tx.to) if tx.to else None,
        "value": str(tx.value),
        "nonce": tx.nonce,
        "gas": tx.gas,
        "gas_price": str(gas_price),
        "input": hexd(tx.data),
        "type": tx.type_id or 0,
        "chain_id": tx.chain_id,
        "block": block,
        "gas_used": receipt.gas_used if receipt is not None else None,
        "fee": str(receipt.gas_used * receipt.effective_gas_price) if receipt else None,
        "contract_address": (
            checksum(receipt.contract_address)
            if receipt is not None and receipt.contract_address
            else None
        ),
        "events": events,
    }


def account_transaction(
    address: bytes,
    tx_hash: bytes,
    record: TransactionRecord,
    receipt: ReceiptRecord,
    timestamp: int,
) -> tuple[dict[str, Any], bytes | None, int]:
    """A history row, with its counterparty and value for filtering."""
    tx = decode_transaction(record.raw)
    to = tx.to or receipt.contract_address or None
    sender = record.sender
    if sender == address:
        direction = "self" if to == address else "out"
        counterparty = to
    else:
        direction, counterparty = "in", sender
    item = {
        "hash": hexd(tx_hash),
        "block_number": record.block_number,
        "tx_index": record.index,
        "timestamp": timestamp,
        "time": iso_time(timestamp),
        "from": checksum(sender),
        "to": checksum(to) if to else None,
        "value": str(tx.value),
        "fee": str(receipt.gas_used * receipt.effective_gas_price),
        "gas_used": receipt.gas_used,
        "status": status_of(receipt),
        "direction": direction,
    }
    return item, counterparty, tx.value


def _log_place(position: LogPosition, tx_hash: bytes, timestamp: int) -> dict[str, Any]:
    """The fields every log-based row starts with (`models.LogPlace`)."""
    return {
        "tx_hash": hexd(tx_hash),
        "block_number": position.block_number,
        "tx_index": position.tx_index,
        "log_index": position.log_index,
        "timestamp": timestamp,
        "time": iso_time(timestamp),
    }


def transfer(address: bytes, row: TokenTransfer) -> dict[str, Any]:
    outgoing = "self" if row.recipient == address else "out"
    direction = outgoing if row.sender == address else "in"
    return {
        **_log_place(row.position, row.tx_hash, row.timestamp),
        "token": checksum(row.token),
        "from": checksum(row.sender),
        "to": checksum(row.recipient),
        "amount": str(row.amount),
        "direction": direction,
    }


def fee(row: FeePayment) -> dict[str, Any]:
    return {
        **_log_place(row.position, row.tx_hash, row.timestamp),
        "token": checksum(row.token),
        "payer": checksum(row.payer),
        "recipient": checksum(row.recipient),
        "kind": FeeKind.name_of(row.kind),
        "amount": str(row.amount),
        "fee": str(row.fee),
    }


def held(address: bytes, row: HeldPayment) -> dict[str, Any]:
    """A held payment as a history row: where it was held, and its status now."""
    outgoing = "self" if row.payee == address else "out"
    return {
        **_log_place(row.position, row.tx_hash, row.timestamp),
        "token": checksum(row.token),
        "hold_id": row.hold_id,
        "from": checksum(row.payer),
        "to": checksum(row.payee),
        "amount": str(row.amount),
        "direction": outgoing if row.payer == address else "in",
        "kind": FeeKind.name_of(row.kind),
        "reasons": [name for bit, name in HOLD_REASONS if row.reasons & bit],
        "status": row.status,
        "fee": str(row.fee),
        "closed_tx_hash": hexd(row.closed_tx_hash) if row.closed_tx_hash else None,
        "closed_time": iso_time(row.closed_timestamp) if row.closed_tx_hash else None,
    }


def points(address: bytes, row: PointsEvent) -> dict[str, Any]:
    """A points event as a row of `address`'s points history, with how it moved its points."""
    offer = row.event.startswith("offer_")
    return {
        **_log_place(row.position, row.tx_hash, row.timestamp),
        "contract": checksum(row.contract),
        "event": row.event,
        "account": checksum(row.account),
        "counterparty": checksum(row.counterparty) if row.counterparty else None,
        "points": str(row.points),
        "change": str(row.change(address)),
        "offer_id": str(row.offer_id) if offer else None,
        "quantity": str(row.quantity) if offer else None,
        "price": str(row.price) if row.event == "offer_published" else None,
        "expiry": row.expiry if row.event == "offer_published" else None,
        "payment_amount": str(row.payment_amount) if row.event in ("earned", "awarded") else None,
        "ref": hexd(row.ref) if row.event == "redeemed" else None,
    }


def _settlement_event(event: SettlementEvent) -> dict[str, Any]:
    return {"name": event.name, **_log_place(event.position, event.tx_hash, event.timestamp)}


def settlement(row: Settlement) -> dict[str, Any]:
    events = [_settlement_event(event) for event in row.events]
    return {
        "kind": row.kind,
        "id": row.id,
        "contract": checksum(row.contract),
        "state": row.state,
        "parties": [checksum(party) for party in row.parties],
        "total": str(row.total),
        "settled": str(row.settled),
        "opened": events[0] if events else None,
        "updated": events[-1] if events else None,
        "events": events,
    }


def header_rlp(header: BlockHeaderAPI) -> str:
    return hexd(rlp.encode(header))


def header_hash(header: BlockHeaderAPI) -> bytes:
    return onchain_hash(header)


def flatten_calls(frame: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """A callTracer tree as rows, depth first, with integers where JSON-RPC has hex."""
    row = {
        "depth": depth,
        "type": frame["type"],
        "from": frame["from"],
        "to": frame.get("to"),
        "value": str(int(frame.get("value", "0x0"), 16)),
        "gas": int(frame["gas"], 16),
        "gas_used": int(frame["gasUsed"], 16),
        "input": frame["input"],
        "output": frame.get("output"),
        "error": frame.get("error"),
        "revert_reason": frame.get("revertReason"),
    }
    rows = [row]
    for call in frame.get("calls", []):
        rows.extend(flatten_calls(call, depth + 1))
    return rows
