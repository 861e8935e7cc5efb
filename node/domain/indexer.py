"""Turns a block's logs into the auditor indexes of `node.domain.indexes`, in the block's batch.

Token transfers are indexed for any ERC-20 (the `Transfer` signature with two indexed
addresses); fees, held payments, points events and settlements only from the bank's contracts at
their genesis addresses, so no other contract can forge one by emitting a look-alike event. Internal
transactions come from execution itself (`node.chain.internal_calls`), not from logs. Settlement
and hold records are updated in place as their events arrive; reads go through the batch, so several
events of one settlement in one block see each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import rlp
from eth_utils import keccak

from contracts import load_artifact
from node.chain.event_abi import EventAbi, event_table
from node.chain.internal_calls import InternalCall
from node.domain.contracts import BATCH_PAYOUT, ESCROW, NETTING, POINTS, WALLET_TOKEN
from node.domain.indexes import (
    FeeRecord,
    HoldRecord,
    InternalCallRecord,
    LogPosition,
    PointsRecord,
    Settlement,
    SettlementEvent,
    TokenTransferRecord,
    TxInternalsRecord,
    decode_settlement,
    encode_settlement,
    fee_key,
    hold_party_key,
    internal_call_key,
    points_event_code,
    points_key,
    settlement_kind_code,
    settlement_order_key,
    settlement_party_key,
    token_transfer_key,
)
from node.storage import schema
from node.storage.records import LogRecord, ReceiptRecord, TransactionRecord, encode_record
from node.storage.store import StoreBatch

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
_MAX_ID = 2**64
_HOLD_OUTCOMES = {"HoldReleased": 2, "HoldRejected": 3, "HoldCancelled": 4}
"""WalletToken.HoldStatus after each event that decides a held payment."""
_POINTS_EVENTS = {
    "PointsEarned": "earned",
    "Awarded": "awarded",
    "Redeemed": "redeemed",
    "OfferRedeemed": "offer_redeemed",
    "OfferPublished": "offer_published",
    "OfferExpired": "offer_expired",
    "OfferWithdrawn": "offer_withdrawn",
    "Transferred": "transferred",
}
"""Events of a points row (`node.domain.indexes.POINTS_EVENTS`); `Settled` only moves points
from the token into the ledger, so it is no row."""


class TxCalls(Protocol):
    """What the internal-call index needs of a transaction: an `ExecutedTransaction`, or
    a backfilled one (`node.chain.backfill`)."""

    @property
    def tx_hash(self) -> bytes: ...

    @property
    def internal_calls(self) -> tuple[InternalCall, ...]: ...

    @property
    def error(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Log:
    """One log with its place in the chain and its decoded arguments."""

    contract: bytes
    name: str
    args: dict[str, Any]
    position: LogPosition
    tx_hash: bytes
    timestamp: int


def _events(artifact: str) -> dict[bytes, EventAbi]:
    return event_table(load_artifact(artifact)["abi"])


def _address(value: str) -> bytes:
    return bytes.fromhex(value[2:])


class BlockIndexer:
    """Writes the index rows of one committed block into its batch."""

    def __init__(self) -> None:
        self._contracts: dict[bytes, dict[bytes, EventAbi]] = {
            WALLET_TOKEN: _events("WalletToken"),
            ESCROW: _events("Escrow"),
            BATCH_PAYOUT: _events("BatchPayout"),
            NETTING: _events("Netting"),
            POINTS: _events("Points"),
        }
        points = self._contracts[POINTS]
        self._offer_redeemed = next(t for t, e in points.items() if e.name == "OfferRedeemed")
        self._settlement_handlers: dict[bytes, Callable[[StoreBatch, _Log], None]] = {
            ESCROW: self._escrow,
            BATCH_PAYOUT: self._batch,
            NETTING: self._netting,
        }

    def index_block(
        self,
        batch: StoreBatch,
        timestamp: int,
        transactions: Sequence[tuple[bytes, TransactionRecord, ReceiptRecord]],
    ) -> None:
        for tx_hash, tx_record, receipt in transactions:
            for offset, log in enumerate(receipt.logs):
                if not log.topics:
                    continue
                position = LogPosition(
                    tx_record.block_number, tx_record.index, receipt.first_log_index + offset
                )
                if log.topics[0] == TRANSFER_TOPIC and len(log.topics) == 3:
                    self._transfer(batch, log, position, tx_hash, timestamp)
                events = self._contracts.get(log.address)
                event = events.get(log.topics[0]) if events else None
                if event is None:
                    continue
                decoded = _Log(
                    log.address, event.name, event.decode(log), position, tx_hash, timestamp
                )
                if log.address == WALLET_TOKEN:
                    if event.name == "FeeCharged":
                        self._fee(batch, decoded)
                    elif event.name in _HOLD_OUTCOMES or event.name == "PaymentHeld":
                        self._hold(batch, decoded)
                    elif event.name == "PointsEarned":
                        self._points(batch, decoded)
                elif log.address == POINTS:
                    if event.name in _POINTS_EVENTS and not self._offer_burn(receipt.logs, offset):
                        self._points(batch, decoded)
                else:
                    self._settlement_handlers[log.address](batch, decoded)

    @staticmethod
    def index_internal_calls(
        batch: StoreBatch,
        number: int,
        timestamp: int,
        transactions: Sequence[TxCalls],
    ) -> None:
        """Each transaction's internal transactions, under every account they involve and
        under the transaction (with why it failed): only for the few that have either."""
        for tx_index, item in enumerate(transactions):
            if not item.internal_calls and not item.error:
                continue
            records = []
            for order, call in enumerate(item.internal_calls):
                record = InternalCallRecord(
                    call.sender,
                    call.recipient,
                    call.created,
                    call.value,
                    call.gas,
                    call.gas_used,
                    call.trace_id.encode(),
                    int(call.is_error),
                    call.error.encode(),
                    item.tx_hash,
                    timestamp,
                )
                records.append(record)
                encoded = encode_record(record)
                position = LogPosition(number, tx_index, order)
                for account in {call.sender, call.recipient or call.created}:
                    batch[internal_call_key(account, position)] = encoded
            batch[schema.tx_internals_key(item.tx_hash)] = encode_record(
                TxInternalsRecord(item.error.encode(), records)
            )

    @staticmethod
    def defer_internal_calls(batch: StoreBatch, number: int, block_hash: bytes) -> None:
        """Mark the block's internal transactions as still to be indexed (`node.chain.backfill`
        replays it): durable in the block's own batch, so no crash can lose the task."""
        batch[schema.internals_pending_key(number)] = block_hash

    @staticmethod
    def _transfer(
        batch: StoreBatch, log: LogRecord, position: LogPosition, tx_hash: bytes, timestamp: int
    ) -> None:
        if len(log.data) != 32:
            return
        sender, recipient = log.topics[1][12:], log.topics[2][12:]
        value = TokenTransferRecord(
            log.address, sender, recipient, int.from_bytes(log.data, "big"), tx_hash, timestamp
        )
        encoded = encode_record(value)
        batch[token_transfer_key(sender, position)] = encoded
        if recipient != sender:
            batch[token_transfer_key(recipient, position)] = encoded

    @staticmethod
    def _fee(batch: StoreBatch, log: _Log) -> None:
        args = log.args
        payer = _address(args["from"])
        batch[fee_key(payer, log.position)] = encode_record(
            FeeRecord(
                log.contract,
                payer,
                _address(args["to"]),
                args["kind"],
                args["amount"],
                args["fee"],
                log.tx_hash,
                log.timestamp,
            )
        )

    @staticmethod
    def _hold(batch: StoreBatch, log: _Log) -> None:
        """A held payment: its record under its id, and a row under each party at the
        `PaymentHeld` position; its outcome updates the record in place."""
        args = log.args
        hold_id = args["holdId"]
        if hold_id >= _MAX_ID:
            return
        key = schema.hold_key(hold_id)
        if log.name == "PaymentHeld":
            payer, payee = _address(args["from"]), _address(args["to"])
            record = HoldRecord(
                log.contract,
                hold_id,
                payer,
                payee,
                args["amount"],
                args["kind"],
                args["reasons"],
                1,
                log.position.encode(),
                log.tx_hash,
                log.timestamp,
                0,
                b"",
                0,
            )
            for party in {payer, payee}:
                batch[hold_party_key(party, log.position)] = hold_id.to_bytes(8, "big")
        else:
            try:
                held = rlp.decode(batch[key], sedes=HoldRecord)
            except KeyError:
                return
            record = held.copy(
                status=_HOLD_OUTCOMES[log.name],
                fee=args.get("fee", 0),
                closed_tx_hash=log.tx_hash,
                closed_timestamp=log.timestamp,
            )
        batch[key] = encode_record(record)

    def _offer_burn(self, logs: Sequence[LogRecord], offset: int) -> bool:
        """Whether the log at `offset` is the `Redeemed` of an offer redemption: the
        `OfferRedeemed` right after it (same account, the offer id as its reference) is the row."""
        log = logs[offset]
        if offset + 1 >= len(logs) or len(log.topics) != 3:
            return False
        following = logs[offset + 1]
        return (
            following.address == POINTS
            and len(following.topics) == 4
            and following.topics[0] == self._offer_redeemed
            and following.topics[1] == log.topics[2]
            and following.topics[2] == log.topics[1]
        )

    @staticmethod
    def _points(batch: StoreBatch, log: _Log) -> None:
        """A points event, under the account whose points moved and its counterparty (or
        under the merchant, for an offer's own events)."""
        args = log.args
        account = _address(args.get("account") or args.get("merchant") or args["from"])
        counterparty = b""
        if log.name == "OfferRedeemed":
            counterparty = _address(args["merchant"])
        elif log.name == "Transferred":
            counterparty = _address(args["to"])
        ref = args.get("ref", b"")
        encoded = encode_record(
            PointsRecord(
                log.contract,
                points_event_code(_POINTS_EVENTS[log.name]),
                account,
                counterparty,
                args.get("points", 0),
                args.get("offerId", 0),
                args.get("quantity", args.get("stock", args.get("unsold", 0))),
                args.get("price", 0),
                args.get("expiry", 0),
                args.get("paymentAmount", 0),
                ref,
                log.tx_hash,
                log.timestamp,
            )
        )
        for party in {account, counterparty} - {b""}:
            batch[points_key(party, log.position)] = encoded

    def _escrow(self, batch: StoreBatch, log: _Log) -> None:
        args = log.args
        if log.name == "EscrowOpened":
            parties = (_address(args["payer"]), _address(args["payee"]), _address(args["arbiter"]))
            self._open(batch, log, "escrow", args["id"], "open", parties, args["total"])
            return
        deal = self._load(batch, "escrow", args["id"])
        if deal is None:
            return
        if log.name == "MilestoneReleased":
            deal = replace(deal, settled=deal.settled + args["amount"])
        elif log.name == "Disputed":
            deal = replace(deal, state="disputed")
        elif log.name == "Resolved":
            deal = replace(deal, settled=deal.settled + args["toPayee"] + args["toPayer"])
        elif log.name == "Refunded":
            deal = replace(deal, settled=deal.settled + args["amount"])
        elif log.name == "EscrowClosed":
            deal = replace(deal, state="closed")
        self._save(batch, deal, log)

    def _batch(self, batch: StoreBatch, log: _Log) -> None:
        """PayeePaid events precede their BatchPaid; the payer is known only at the end."""
        args = log.args
        payout = self._load(batch, "batch", args["batchId"])
        if log.name == "PayeePaid":
            payee = _address(args["payee"])
            if payout is None:
                self._open(batch, log, "batch", args["batchId"], "paying", (payee,), args["amount"])
            else:
                payout = replace(
                    payout, parties=(*payout.parties, payee), total=payout.total + args["amount"]
                )
                self._store(batch, payout)
                self._index_party(batch, payout, payee)
            return
        if log.name == "BatchPaid" and payout is not None:
            payer = _address(args["payer"])
            payout = replace(
                payout,
                state="paid",
                parties=(payer, *payout.parties),
                total=args["total"],
                settled=args["total"],
            )
            self._save(batch, payout, log)
            self._index_party(batch, payout, payer)

    def _netting(self, batch: StoreBatch, log: _Log) -> None:
        args = log.args
        cycle_id = args["cycle"]
        cycle = self._load(batch, "netting", cycle_id)
        if log.name == "ObligationRecorded":
            debtor, creditor = _address(args["debtor"]), _address(args["creditor"])
            if cycle is None:
                self._open(
                    batch, log, "netting", cycle_id, "open", (debtor, creditor), args["amount"]
                )
                return
            new = tuple(p for p in (debtor, creditor) if p not in cycle.parties)
            cycle = replace(cycle, parties=cycle.parties + new, total=cycle.total + args["amount"])
            self._save(batch, cycle, log)
            for party in new:
                self._index_party(batch, cycle, party)
        elif log.name == "CycleSettled" and cycle is not None:
            cycle = replace(cycle, state="settled", settled=args["netMoved"], total=args["gross"])
            self._save(batch, cycle, log)

    def _open(
        self,
        batch: StoreBatch,
        log: _Log,
        kind: str,
        settlement_id: int,
        state: str,
        parties: tuple[bytes, ...],
        total: int,
    ) -> None:
        if settlement_id >= _MAX_ID:
            return
        settlement = Settlement(
            kind,
            settlement_id,
            log.contract,
            state,
            parties,
            total,
            0,
            (SettlementEvent(log.name, log.position, log.tx_hash, log.timestamp),),
        )
        self._store(batch, settlement)
        code = settlement_kind_code(kind)
        batch[settlement_order_key(log.position.block_number, code, settlement_id)] = b""
        for party in parties:
            self._index_party(batch, settlement, party)

    @staticmethod
    def _load(batch: StoreBatch, kind: str, settlement_id: int) -> Settlement | None:
        if settlement_id >= _MAX_ID:
            return None
        key = schema.settlement_key(settlement_kind_code(kind), settlement_id)
        try:
            return decode_settlement(batch[key])
        except KeyError:
            return None

    def _save(self, batch: StoreBatch, settlement: Settlement, log: _Log) -> None:
        event = SettlementEvent(log.name, log.position, log.tx_hash, log.timestamp)
        self._store(batch, replace(settlement, events=(*settlement.events, event)))

    @staticmethod
    def _store(batch: StoreBatch, settlement: Settlement) -> None:
        key = schema.settlement_key(settlement_kind_code(settlement.kind), settlement.id)
        batch[key] = encode_settlement(settlement)

    @staticmethod
    def _index_party(batch: StoreBatch, settlement: Settlement, party: bytes) -> None:
        kind = settlement_kind_code(settlement.kind)
        batch[settlement_party_key(party, settlement.opened_block, kind, settlement.id)] = b""
