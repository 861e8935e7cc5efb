"""Auditor indexes: token transfers, fees, settlements, held payments, points events and internal
transactions by account, read page by page.

`node.domain.indexer` writes these in each block's own batch (so an index never disagrees with
the chain after a crash); this module holds their records and the readers the REST API pages
through. Every key ends in a chain position, so a reader seeks to a cursor and reads only the
rows it returns: a page costs the same on ten blocks or a million.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import rlp
from rlp.sedes import Binary, CountableList, big_endian_int, binary

from node.storage import schema
from node.storage.store import KeyValueStore

_hash32 = Binary.fixed_length(32)
_address = Binary.fixed_length(20)

_NUMBER = 8
_TIMESTAMP = 11
"""Positions of the block number and timestamp in a header's RLP list."""

SETTLEMENT_KINDS = ("escrow", "batch", "netting")
"""Settlement kinds by their one-byte code (index + 1) in the keys."""


def settlement_kind_code(kind: str) -> int:
    try:
        return SETTLEMENT_KINDS.index(kind) + 1
    except ValueError:
        raise ValueError(f"unknown settlement kind {kind!r}") from None


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """Where a log sits in the chain; also the cursor of log-based pages."""

    block_number: int
    tx_index: int
    log_index: int

    def encode(self) -> bytes:
        return (
            self.block_number.to_bytes(8, "big")
            + self.tx_index.to_bytes(4, "big")
            + self.log_index.to_bytes(4, "big")
        )

    @classmethod
    def decode(cls, data: bytes) -> LogPosition:
        return cls(
            int.from_bytes(data[:8], "big"),
            int.from_bytes(data[8:12], "big"),
            int.from_bytes(data[12:16], "big"),
        )


@dataclass(frozen=True, slots=True)
class TokenTransfer:
    """An ERC-20 `Transfer(from, to, value)` log of any token contract."""

    position: LogPosition
    token: bytes
    sender: bytes
    recipient: bytes
    amount: int
    tx_hash: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class FeePayment:
    """A wallet-token `FeeCharged` log: kind 0 internal, 1 external, 2 cross-border."""

    position: LogPosition
    token: bytes
    payer: bytes
    recipient: bytes
    kind: int
    amount: int
    fee: int
    tx_hash: bytes
    timestamp: int


HOLD_STATUSES = ("held", "released", "rejected", "cancelled")
"""A held payment's status by its code (index + 1, as `WalletToken.HoldStatus`)."""
HOLD_REASONS = ((1, "over_review_threshold"), (2, "payer_flagged"), (4, "payee_flagged"))
"""`PaymentHeld.reasons` bits and their names."""


@dataclass(frozen=True, slots=True)
class HeldPayment:
    """A wallet-token payment held for review (`PaymentHeld`), with what became of it:
    `status` held|released|rejected|cancelled, `closed_*` the event that decided it."""

    position: LogPosition
    token: bytes
    hold_id: int
    payer: bytes
    payee: bytes
    amount: int
    kind: int
    reasons: int
    status: str
    tx_hash: bytes
    timestamp: int
    fee: int
    closed_tx_hash: bytes
    closed_timestamp: int


POINTS_EVENTS = (
    "earned",
    "awarded",
    "redeemed",
    "offer_redeemed",
    "offer_published",
    "offer_expired",
    "offer_withdrawn",
    "transferred",
)
"""A points row's event by its code (index + 1): `earned` is the wallet token's `PointsEarned`
on a payment, the others the Points ledger's events (`redeemed` only for a plain `redeem`: an
offer's burn is its `offer_redeemed` row)."""


@dataclass(frozen=True, slots=True)
class PointsEvent:
    """A points event as a row of each account it involves.

    `account` is whose points moved (earned, awarded, redeemed, offer_redeemed, the sender of a
    transfer) or the merchant of an offer event; `counterparty` the offer's merchant of a
    redemption or the recipient of a transfer (empty otherwise). `quantity` is the items
    redeemed, the stock published, or the unsold stock of a closed offer; `payment_amount` the
    payment that earned the points (earned, awarded).
    """

    position: LogPosition
    contract: bytes
    event: str
    account: bytes
    counterparty: bytes
    points: int
    offer_id: int
    quantity: int
    price: int
    expiry: int
    payment_amount: int
    ref: bytes
    tx_hash: bytes
    timestamp: int

    def change(self, address: bytes) -> int:
        """How the event moved `address`'s points (0 for a merchant's offer events)."""
        if self.event in ("earned", "awarded"):
            return self.points if address == self.account else 0
        if self.event in ("redeemed", "offer_redeemed"):
            return -self.points if address == self.account else 0
        if self.event == "transferred" and self.account != self.counterparty:
            return -self.points if address == self.account else self.points
        return 0


@dataclass(frozen=True, slots=True)
class SettlementEvent:
    name: str
    position: LogPosition
    tx_hash: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """An escrow deal, batch payout or netting cycle of the bank's settlement contracts.

    `state`: escrow open|disputed|closed, batch paid, netting open|settled. `parties`: escrow
    payer, payee, arbiter; batch payer then payees; netting every party of the cycle. `total`:
    escrow total, batch total, netting gross obligations; `settled`: what has moved so far.
    """

    kind: str
    id: int
    contract: bytes
    state: str
    parties: tuple[bytes, ...]
    total: int
    settled: int
    events: tuple[SettlementEvent, ...]

    @property
    def opened_block(self) -> int:
        return self.events[0].position.block_number if self.events else 0


@dataclass(frozen=True, slots=True)
class InternalTransaction:
    """A value-moving call or a contract creation inside a transaction (`node.chain.
    internal_calls`); `position.log_index` is its order among the transaction's internal
    transactions."""

    position: LogPosition
    sender: bytes
    recipient: bytes
    created: bytes
    value: int
    gas: int
    gas_used: int
    trace_id: str
    is_error: bool
    error: str
    tx_hash: bytes
    timestamp: int


class InternalCallRecord(rlp.Serializable):
    fields = (
        ("sender", _address),
        ("recipient", Binary(min_length=0, max_length=20)),
        ("created", Binary(min_length=0, max_length=20)),
        ("value", big_endian_int),
        ("gas", big_endian_int),
        ("gas_used", big_endian_int),
        ("trace_id", binary),
        ("is_error", big_endian_int),
        ("error", binary),
        ("tx_hash", _hash32),
        ("timestamp", big_endian_int),
    )


class TxInternalsRecord(rlp.Serializable):
    """A transaction's internal transactions (in order) and, if it failed, why."""

    fields = (
        ("error", binary),
        ("calls", CountableList(InternalCallRecord)),
    )


def internal_call_key(address: bytes, position: LogPosition) -> bytes:
    return schema.internal_call_prefix(address) + position.encode()


def _internal(position: LogPosition, record: InternalCallRecord) -> InternalTransaction:
    return InternalTransaction(
        position,
        record.sender,
        record.recipient,
        record.created,
        record.value,
        record.gas,
        record.gas_used,
        record.trace_id.decode(),
        bool(record.is_error),
        record.error.decode(),
        record.tx_hash,
        record.timestamp,
    )


class TokenTransferRecord(rlp.Serializable):
    fields = (
        ("token", _address),
        ("sender", _address),
        ("recipient", _address),
        ("amount", big_endian_int),
        ("tx_hash", _hash32),
        ("timestamp", big_endian_int),
    )


class FeeRecord(rlp.Serializable):
    fields = (
        ("token", _address),
        ("payer", _address),
        ("recipient", _address),
        ("kind", big_endian_int),
        ("amount", big_endian_int),
        ("fee", big_endian_int),
        ("tx_hash", _hash32),
        ("timestamp", big_endian_int),
    )


class HoldRecord(rlp.Serializable):
    """`closed_tx_hash` is empty while the payment is held; `fee` is known once released."""

    fields = (
        ("token", _address),
        ("hold_id", big_endian_int),
        ("payer", _address),
        ("payee", _address),
        ("amount", big_endian_int),
        ("kind", big_endian_int),
        ("reasons", big_endian_int),
        ("status", big_endian_int),
        ("position", Binary.fixed_length(16)),
        ("tx_hash", _hash32),
        ("timestamp", big_endian_int),
        ("fee", big_endian_int),
        ("closed_tx_hash", binary),
        ("closed_timestamp", big_endian_int),
    )


def hold_party_key(party: bytes, position: LogPosition) -> bytes:
    return schema.hold_party_prefix(party) + position.encode()


def held_payment(record: HoldRecord) -> HeldPayment:
    status = record.status
    return HeldPayment(
        LogPosition.decode(record.position),
        record.token,
        record.hold_id,
        record.payer,
        record.payee,
        record.amount,
        record.kind,
        record.reasons,
        HOLD_STATUSES[status - 1] if 0 < status <= len(HOLD_STATUSES) else str(status),
        record.tx_hash,
        record.timestamp,
        record.fee,
        record.closed_tx_hash,
        record.closed_timestamp,
    )


class PointsRecord(rlp.Serializable):
    """One `PointsEvent`, stored under each account it involves."""

    fields = (
        ("contract", _address),
        ("event", big_endian_int),
        ("account", _address),
        ("counterparty", Binary(min_length=0, max_length=20)),
        ("points", big_endian_int),
        ("offer_id", big_endian_int),
        ("quantity", big_endian_int),
        ("price", big_endian_int),
        ("expiry", big_endian_int),
        ("payment_amount", big_endian_int),
        ("ref", Binary(min_length=0, max_length=32)),
        ("tx_hash", _hash32),
        ("timestamp", big_endian_int),
    )


def points_key(account: bytes, position: LogPosition) -> bytes:
    return schema.points_prefix(account) + position.encode()


def points_event_code(event: str) -> int:
    return POINTS_EVENTS.index(event) + 1


def _points_event(position: LogPosition, record: PointsRecord) -> PointsEvent:
    code = record.event
    return PointsEvent(
        position,
        record.contract,
        POINTS_EVENTS[code - 1] if 0 < code <= len(POINTS_EVENTS) else str(code),
        record.account,
        record.counterparty,
        record.points,
        record.offer_id,
        record.quantity,
        record.price,
        record.expiry,
        record.payment_amount,
        record.ref,
        record.tx_hash,
        record.timestamp,
    )


class _SettlementEventRecord(rlp.Serializable):
    fields = (
        ("name", binary),
        ("position", Binary.fixed_length(16)),
        ("tx_hash", _hash32),
        ("timestamp", big_endian_int),
    )


class SettlementRecord(rlp.Serializable):
    fields = (
        ("kind", big_endian_int),
        ("id", big_endian_int),
        ("contract", _address),
        ("state", binary),
        ("parties", CountableList(_address)),
        ("total", big_endian_int),
        ("settled", big_endian_int),
        ("events", CountableList(_SettlementEventRecord)),
    )


def token_transfer_key(address: bytes, position: LogPosition) -> bytes:
    return schema.token_transfer_prefix(address) + position.encode()


def fee_key(payer: bytes, position: LogPosition) -> bytes:
    return schema.fee_prefix(payer) + position.encode()


def settlement_order_key(opened_block: int, kind: int, settlement_id: int) -> bytes:
    return (
        schema.settlement_order_prefix()
        + opened_block.to_bytes(8, "big")
        + bytes([kind])
        + settlement_id.to_bytes(8, "big")
    )


def settlement_party_key(party: bytes, opened_block: int, kind: int, settlement_id: int) -> bytes:
    return (
        schema.settlement_party_prefix(party)
        + opened_block.to_bytes(8, "big")
        + bytes([kind])
        + settlement_id.to_bytes(8, "big")
    )


def event_record(event: SettlementEvent) -> _SettlementEventRecord:
    return _SettlementEventRecord(
        event.name.encode(), event.position.encode(), event.tx_hash, event.timestamp
    )


def encode_settlement(settlement: Settlement) -> bytes:
    return rlp.encode(
        SettlementRecord(
            settlement_kind_code(settlement.kind),
            settlement.id,
            settlement.contract,
            settlement.state.encode(),
            list(settlement.parties),
            settlement.total,
            settlement.settled,
            [event_record(event) for event in settlement.events],
        )
    )


def decode_settlement(data: bytes) -> Settlement:
    record = rlp.decode(data, sedes=SettlementRecord)
    return Settlement(
        kind=SETTLEMENT_KINDS[record.kind - 1],
        id=record.id,
        contract=record.contract,
        state=record.state.decode(),
        parties=tuple(record.parties),
        total=record.total,
        settled=record.settled,
        events=tuple(
            SettlementEvent(
                event.name.decode(),
                LogPosition.decode(event.position),
                event.tx_hash,
                event.timestamp,
            )
            for event in record.events
        ),
    )


def _upper_bound(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    return (int.from_bytes(prefix, "big") + 1).to_bytes(len(prefix), "big")


class ChainIndex:
    """Readers over the indexes; every iterator is lazy and resumes strictly after a cursor."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def _rows(
        self, prefix: bytes, newest_first: bool, after: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Rows under `prefix`, resuming strictly after the row whose key suffix is `after`."""
        start, stop = prefix, _upper_bound(prefix)
        if after is not None:
            if newest_first:
                stop = prefix + after
            else:
                start = prefix + after + b"\x00"
        for key, value in self.store.iterate_range(start, stop, reverse=newest_first):
            yield key[len(prefix) :], value

    def _log_rows(
        self,
        prefix: bytes,
        sedes: type[rlp.Serializable],
        newest_first: bool,
        after: LogPosition | None,
    ) -> Iterator[tuple[LogPosition, Any]]:
        """(position, decoded record) of a log index keyed by log position."""
        cursor = None if after is None else after.encode()
        for suffix, value in self._rows(prefix, newest_first, cursor):
            yield LogPosition.decode(suffix), rlp.decode(value, sedes=sedes)

    def account_transactions(
        self,
        address: bytes,
        *,
        newest_first: bool = True,
        after: tuple[int, int] | None = None,
    ) -> Iterator[tuple[int, int]]:
        """(block number, tx index) of each transaction the account sent or received."""
        cursor = None
        if after is not None:
            cursor = after[0].to_bytes(8, "big") + after[1].to_bytes(4, "big")
        for suffix, _ in self._rows(schema.account_tx_prefix(address), newest_first, cursor):
            yield int.from_bytes(suffix[:8], "big"), int.from_bytes(suffix[8:12], "big")

    def token_transfers(
        self, address: bytes, *, newest_first: bool = True, after: LogPosition | None = None
    ) -> Iterator[TokenTransfer]:
        """Token transfers from or to the account, any token."""
        rows = self._log_rows(
            schema.token_transfer_prefix(address), TokenTransferRecord, newest_first, after
        )
        for position, record in rows:
            yield TokenTransfer(
                position,
                record.token,
                record.sender,
                record.recipient,
                record.amount,
                record.tx_hash,
                record.timestamp,
            )

    def fee_payments(
        self, payer: bytes, *, newest_first: bool = True, after: LogPosition | None = None
    ) -> Iterator[FeePayment]:
        """Fees the account paid on wallet-token payments."""
        for position, record in self._log_rows(
            schema.fee_prefix(payer), FeeRecord, newest_first, after
        ):
            yield FeePayment(
                position,
                record.token,
                record.payer,
                record.recipient,
                record.kind,
                record.amount,
                record.fee,
                record.tx_hash,
                record.timestamp,
            )

    def internal_transactions(
        self, address: bytes, *, newest_first: bool = True, after: LogPosition | None = None
    ) -> Iterator[InternalTransaction]:
        """Internal transactions from, to or creating the account."""
        rows = self._log_rows(
            schema.internal_call_prefix(address), InternalCallRecord, newest_first, after
        )
        for position, record in rows:
            yield _internal(position, record)

    def tx_internals(
        self, tx_hash: bytes, block_number: int, tx_index: int
    ) -> tuple[str, list[InternalTransaction]]:
        """(why the transaction failed, its internal transactions), as its block recorded
        them (("", []) for one that succeeded without any)."""
        data = self.store.get(schema.tx_internals_key(tx_hash))
        if data is None:
            return "", []
        record = rlp.decode(data, sedes=TxInternalsRecord)
        calls = [
            _internal(LogPosition(block_number, tx_index, order), call)
            for order, call in enumerate(record.calls)
        ]
        return record.error.decode(), calls

    def hold(self, hold_id: int) -> HeldPayment | None:
        if hold_id < 0 or hold_id >= 2**64:
            return None
        data = self.store.get(schema.hold_key(hold_id))
        return None if data is None else held_payment(rlp.decode(data, sedes=HoldRecord))

    def holds(
        self, address: bytes, *, newest_first: bool = True, after: LogPosition | None = None
    ) -> Iterator[HeldPayment]:
        """Wallet-token payments from or to the account that were held, as they stand now."""
        cursor = None if after is None else after.encode()
        for _, value in self._rows(schema.hold_party_prefix(address), newest_first, cursor):
            held = self.hold(int.from_bytes(value, "big"))
            if held is not None:
                yield held

    def points_events(
        self, account: bytes, *, newest_first: bool = True, after: LogPosition | None = None
    ) -> Iterator[PointsEvent]:
        """Points earned, awarded, redeemed or transferred by the account, and the offers it
        published, sold or closed as a merchant."""
        rows = self._log_rows(schema.points_prefix(account), PointsRecord, newest_first, after)
        for position, record in rows:
            yield _points_event(position, record)

    def settlement(self, kind: str, settlement_id: int) -> Settlement | None:
        if settlement_id < 0 or settlement_id >= 2**64:
            return None
        data = self.store.get(schema.settlement_key(settlement_kind_code(kind), settlement_id))
        return None if data is None else decode_settlement(data)

    def settlements(
        self,
        *,
        party: bytes | None = None,
        newest_first: bool = True,
        after: tuple[str, int] | None = None,
    ) -> Iterator[Settlement]:
        """All settlements, or one party's, in the order of the blocks that opened them.

        The cursor is the (kind, id) of the last settlement of the previous page.
        """
        prefix = (
            schema.settlement_order_prefix()
            if party is None
            else schema.settlement_party_prefix(party)
        )
        cursor = None
        if after is not None:
            previous = self.settlement(*after)
            if previous is None:
                raise ValueError("cursor names no settlement")
            cursor = (
                previous.opened_block.to_bytes(8, "big")
                + bytes([settlement_kind_code(previous.kind)])
                + previous.id.to_bytes(8, "big")
            )
        for suffix, _ in self._rows(prefix, newest_first, cursor):
            data = self.store.get(
                schema.settlement_key(suffix[8], int.from_bytes(suffix[9:17], "big"))
            )
            if data is not None:
                yield decode_settlement(data)

    def block_at_or_after(self, timestamp: int) -> int | None:
        """The first canonical block whose timestamp is >= `timestamp` (timestamps only grow)."""
        head = self._head_number()
        if head is None or self._timestamp(head) < timestamp:
            return None
        low, high = 0, head
        while low < high:
            middle = (low + high) // 2
            if self._timestamp(middle) >= timestamp:
                high = middle
            else:
                low = middle + 1
        return low

    def block_at_or_before(self, timestamp: int) -> int | None:
        """The last canonical block whose timestamp is <= `timestamp`."""
        head = self._head_number()
        if head is None or self._timestamp(0) > timestamp:
            return None
        low, high = 0, head
        while low < high:
            middle = (low + high + 1) // 2
            if self._timestamp(middle) <= timestamp:
                low = middle
            else:
                high = middle - 1
        return low

    def _head_number(self) -> int | None:
        head_hash = self.store.get(schema.HEAD_KEY)
        if head_hash is None:
            return None
        return self._header_field(head_hash, _NUMBER)

    def _timestamp(self, number: int) -> int:
        block_hash = self.store.get(schema.canonical_hash_key(number))
        if block_hash is None:
            raise LookupError(f"no canonical block #{number}")
        return self._header_field(block_hash, _TIMESTAMP)

    def _header_field(self, block_hash: bytes, position: int) -> int:
        fields = rlp.decode(self.store[schema.header_key(block_hash)])
        return int.from_bytes(fields[position], "big")
