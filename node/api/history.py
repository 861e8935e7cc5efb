"""An account's history (transactions, token transfers, fees, held payments, points) read page by
page from the indexes, with time, counterparty, amount and token filters.

A time range becomes a block range (binary search over header timestamps), and the range
becomes where the index iteration starts and stops, so a page costs the same on ten blocks or a
million. Counterparty and amount filters are applied to the rows read; a page stops after
`SCAN_LIMIT` rows even if it has found fewer than `limit` matches, handing back a cursor, so a
sparse filter never makes one request read a whole history. Exports walk the same rows to the
end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from node.api import views
from node.api.context import ApiContext
from node.api.errors import BadRequest
from node.api.params import encode_cursor
from node.domain.indexes import FeePayment, HeldPayment, LogPosition, PointsEvent, TokenTransfer
from node.storage.chainstore import TxHashes

P = TypeVar("P")


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


Point = TypeVar("Point", bound=_Ordered)
"""A resume point: ordered, so the further back of two can be taken."""

SCAN_LIMIT = 2_000
"""Most rows one page reads before it answers (with a cursor) however few matched."""


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    from_time: int | None = None
    to_time: int | None = None
    counterparty: bytes | None = None
    min_value: int | None = None
    max_value: int | None = None
    token: bytes | None = None

    def check(self) -> None:
        if (
            self.from_time is not None
            and self.to_time is not None
            and self.from_time > self.to_time
        ):
            raise BadRequest("from_time is after to_time")
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise BadRequest("min_value is above max_value")

    def value_ok(self, value: int) -> bool:
        if self.min_value is not None and value < self.min_value:
            return False
        return self.max_value is None or value <= self.max_value


@dataclass(frozen=True, slots=True)
class BlockRange:
    """Inclusive block bounds of a time filter; `empty` when no block falls inside it."""

    low: int
    high: int | None
    empty: bool = False


def block_range(ctx: ApiContext, history: HistoryFilter) -> BlockRange:
    low, high = 0, None
    if history.from_time is not None:
        first = ctx.index.block_at_or_after(history.from_time)
        if first is None:
            return BlockRange(0, None, empty=True)
        low = first
    if history.to_time is not None:
        last = ctx.index.block_at_or_before(history.to_time)
        if last is None or last < low:
            return BlockRange(0, None, empty=True)
        high = last
    return BlockRange(low, high)


def page(
    rows: Iterable[P],
    load: Callable[[P], dict[str, Any] | None],
    limit: int,
    cursor_of: Callable[[P], str],
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` loaded items, and the cursor after the last row read if rows remain."""
    items: list[dict[str, Any]] = []
    iterator = iter(rows)
    for scanned, row in enumerate(iterator, start=1):
        item = load(row)
        if item is not None:
            items.append(item)
        if len(items) >= limit or scanned >= SCAN_LIMIT:
            more = next(iterator, None) is not None
            return items, cursor_of(row) if more else None
    return items, None


def everything(rows: Iterable[P], load: Callable[[P], dict[str, Any] | None]) -> Iterator[dict]:
    """Every matching item (exports)."""
    for row in rows:
        item = load(row)
        if item is not None:
            yield item


def _earlier(a: Point | None, b: Point | None) -> Point | None:
    """Of two newest-first resume points, the one further back (None: no bound)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class AccountHistory:
    """Rows and loaders for one account's lists; `rows` are newest first."""

    def __init__(self, ctx: ApiContext, address: bytes, history: HistoryFilter) -> None:
        history.check()
        self.ctx = ctx
        self.address = address
        self.filter = history
        self.range = block_range(ctx, history)
        self._bodies: dict[int, tuple[bytes, TxHashes]] = {}

    # transactions --------------------------------------------------------------------------
    def transaction_rows(self, after: tuple[int, int] | None) -> Iterator[tuple[int, int]]:
        if self.range.empty:
            return iter(())
        edge = None if self.range.high is None else (self.range.high + 1, 0)
        start = _earlier(after, edge)
        rows = self.ctx.index.account_transactions(self.address, after=start)
        low = self.range.low
        return itertools.takewhile(lambda row: row[0] >= low, rows)

    def _tx_hash(self, number: int, index: int) -> tuple[bytes, bytes] | None:
        """(block hash, tx hash) at a position, slicing the block's body rather than splitting
        it, with one body read per block a page touches (blocks can hold thousands)."""
        cached = self._bodies.get(number)
        if cached is None:
            block_hash = self.ctx.chain.store.canonical_hash(number)
            if block_hash is None:
                return None
            cached = self._bodies[number] = (block_hash, self.ctx.reader.tx_hashes(block_hash))
            if len(self._bodies) > 64:
                self._bodies.pop(next(iter(self._bodies)))
        block_hash, hashes = cached
        return (block_hash, hashes[index]) if 0 <= index < len(hashes) else None

    def load_transaction(self, row: tuple[int, int]) -> dict[str, Any] | None:
        chain = self.ctx.chain
        found = self._tx_hash(*row)
        if found is None:
            return None
        block_hash, tx_hash = found
        record = chain.store.transaction(tx_hash)
        wanted = self.filter.counterparty
        if (
            record is not None
            and wanted is not None
            and record.sender not in (self.address, wanted)
        ):
            return None  # received from someone else: no need to decode it
        receipt = chain.store.receipt(tx_hash)
        header = chain.header_by_hash(block_hash)
        if record is None or receipt is None or header is None:
            return None
        item, counterparty, value = views.account_transaction(
            self.address, tx_hash, record, receipt, header.timestamp
        )
        if wanted is not None and counterparty != wanted:
            return None
        return item if self.filter.value_ok(value) else None

    @staticmethod
    def transaction_cursor(row: tuple[int, int]) -> str:
        return encode_cursor("tx", *row)

    # token transfers -----------------------------------------------------------------------
    def _log_start(self, after: LogPosition | None) -> LogPosition | None:
        edge = None if self.range.high is None else LogPosition(self.range.high + 1, 0, 0)
        return _earlier(after, edge)

    def transfer_rows(self, after: LogPosition | None) -> Iterator[TokenTransfer]:
        if self.range.empty:
            return iter(())
        rows = self.ctx.index.token_transfers(self.address, after=self._log_start(after))
        low = self.range.low
        return itertools.takewhile(lambda row: row.position.block_number >= low, rows)

    def load_transfer(self, row: TokenTransfer) -> dict[str, Any] | None:
        wanted = self.filter
        if wanted.token is not None and row.token != wanted.token:
            return None
        other = row.recipient if row.sender == self.address else row.sender
        if wanted.counterparty is not None and other != wanted.counterparty:
            return None
        return views.transfer(self.address, row) if wanted.value_ok(row.amount) else None

    # fees ----------------------------------------------------------------------------------
    def fee_rows(self, after: LogPosition | None) -> Iterator[FeePayment]:
        if self.range.empty:
            return iter(())
        rows = self.ctx.index.fee_payments(self.address, after=self._log_start(after))
        low = self.range.low
        return itertools.takewhile(lambda row: row.position.block_number >= low, rows)

    def load_fee(self, row: FeePayment) -> dict[str, Any] | None:
        wanted = self.filter
        if wanted.token is not None and row.token != wanted.token:
            return None
        if wanted.counterparty is not None and row.recipient != wanted.counterparty:
            return None
        return views.fee(row) if wanted.value_ok(row.fee) else None

    # held payments -------------------------------------------------------------------------
    def hold_rows(self, after: LogPosition | None) -> Iterator[HeldPayment]:
        if self.range.empty:
            return iter(())
        rows = self.ctx.index.holds(self.address, after=self._log_start(after))
        low = self.range.low
        return itertools.takewhile(lambda row: row.position.block_number >= low, rows)

    def load_hold(self, row: HeldPayment) -> dict[str, Any] | None:
        wanted = self.filter
        if wanted.token is not None and row.token != wanted.token:
            return None
        other = row.payee if row.payer == self.address else row.payer
        if wanted.counterparty is not None and other != wanted.counterparty:
            return None
        return views.held(self.address, row) if wanted.value_ok(row.amount) else None

    # points --------------------------------------------------------------------------------
    def points_rows(self, after: LogPosition | None) -> Iterator[PointsEvent]:
        if self.range.empty:
            return iter(())
        rows = self.ctx.index.points_events(self.address, after=self._log_start(after))
        low = self.range.low
        return itertools.takewhile(lambda row: row.position.block_number >= low, rows)

    def load_points(self, row: PointsEvent) -> dict[str, Any] | None:
        """Counterparty filters match the other account of a redemption or transfer; amount
        filters apply to the points."""
        wanted = self.filter
        other = row.counterparty if row.account == self.address else row.account
        if wanted.counterparty is not None and other != wanted.counterparty:
            return None
        return views.points(self.address, row) if wanted.value_ok(row.points) else None

    @staticmethod
    def log_cursor(row: TokenTransfer | FeePayment | HeldPayment | PointsEvent) -> str:
        position = row.position
        return encode_cursor("log", position.block_number, position.tx_index, position.log_index)
