"""One account: its state and roles, its history (transactions, token transfers, fees, held
payments, points), its
spending by month and merchant category, and exports of the history.

Admins and auditors read any account; enterprises and customers only their own addresses.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from eth_typing import Address as CanonicalAddress
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from node.api import params
from node.api.auth import Caller
from node.api.context import ApiContext, context
from node.api.export import ExportFormat, stream
from node.api.history import AccountHistory, HistoryFilter, everything, page
from node.api.models import (
    Account,
    AccountTransaction,
    FeePaid,
    HeldPaymentRow,
    Page,
    PointsRow,
    Spending,
    Transfer,
)
from node.domain.contracts import WALLET_TOKEN

router = APIRouter(prefix="/accounts", tags=["accounts"])

MAX_AMOUNT = 2**256 - 1
MAX_TIME = 2**40
ZERO_ADDRESS = b"\x00" * 20


async def readable_account(
    address: Annotated[str, Path(max_length=64, description="0x address")], caller: Caller
) -> CanonicalAddress:
    """The path's address, if the caller may read it (403 otherwise)."""
    account = CanonicalAddress(params.address(address))
    caller.require_read(account)
    return account


Address = Annotated[CanonicalAddress, Depends(readable_account)]
Context = Annotated[ApiContext, Depends(context)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200)]


async def history_filter(
    from_time: Annotated[int | None, Query(ge=0, le=MAX_TIME, description="unix s")] = None,
    to_time: Annotated[int | None, Query(ge=0, le=MAX_TIME, description="unix s")] = None,
    counterparty: Annotated[str | None, Query(max_length=64)] = None,
    min_value: Annotated[int | None, Query(ge=0, le=MAX_AMOUNT)] = None,
    max_value: Annotated[int | None, Query(ge=0, le=MAX_AMOUNT)] = None,
    token: Annotated[str | None, Query(max_length=64, description="token transfers only")] = None,
) -> HistoryFilter:
    return HistoryFilter(
        from_time=from_time,
        to_time=to_time,
        counterparty=params.address(counterparty, "counterparty") if counterparty else None,
        min_value=min_value,
        max_value=max_value,
        token=params.address(token, "token") if token else None,
    )


Filter = Annotated[HistoryFilter, Depends(history_filter)]


@router.get("/{address}", response_model=Account, summary="Balance, nonce, role, tier, token")
async def get_account(account: Address, ctx: Context) -> dict:
    head = ctx.reader.head().header
    state = ctx.chain.state_at(head)
    bank = ctx.bank
    role_and_tier = await bank.role_and_tier(head, account)
    token_balance = await bank.token_balance(head, account)
    points = await bank.points(head, account)
    return {
        "address": params.checksum(account),
        "block": head.block_number,
        "balance": str(state.get_balance(account)),
        "nonce": state.get_nonce(account),
        "is_contract": bool(state.get_code(account)),
        "role": role_and_tier[0].name.lower() if role_and_tier else None,
        "kyc_tier": role_and_tier[1] if role_and_tier else None,
        "frozen": await bank.frozen(head, account),
        "token_balance": None if token_balance is None else str(token_balance),
        "points": None if points is None else str(points),
    }


@router.get(
    "/{address}/transactions",
    response_model=Page[AccountTransaction],
    summary="Transactions the account sent or received, newest first",
)
async def account_transactions(
    account: Address, ctx: Context, history: Filter, limit: Limit = 50, cursor: Cursor = None
) -> dict:
    reader = AccountHistory(ctx, account, history)
    after = params.tx_cursor(cursor) if cursor else None
    items, next_cursor = page(
        reader.transaction_rows(after), reader.load_transaction, limit, reader.transaction_cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{address}/transfers",
    response_model=Page[Transfer],
    summary="Token transfers from or to the account (any ERC-20), newest first",
)
async def account_transfers(
    account: Address, ctx: Context, history: Filter, limit: Limit = 50, cursor: Cursor = None
) -> dict:
    reader = AccountHistory(ctx, account, history)
    after = params.log_cursor(cursor) if cursor else None
    items, next_cursor = page(
        reader.transfer_rows(after), reader.load_transfer, limit, reader.log_cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{address}/fees",
    response_model=Page[FeePaid],
    summary="Wallet-token fees the account paid, newest first (amount filters apply to the fee)",
)
async def account_fees(
    account: Address, ctx: Context, history: Filter, limit: Limit = 50, cursor: Cursor = None
) -> dict:
    reader = AccountHistory(ctx, account, history)
    after = params.log_cursor(cursor) if cursor else None
    items, next_cursor = page(reader.fee_rows(after), reader.load_fee, limit, reader.log_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{address}/holds",
    response_model=Page[HeldPaymentRow],
    summary="Wallet-token payments from or to the account held for review, newest first",
)
async def account_holds(
    account: Address, ctx: Context, history: Filter, limit: Limit = 50, cursor: Cursor = None
) -> dict:
    """Each row is where the payment was held, with its status now (held, released,
    rejected, cancelled); a released payment's transfer also appears under `transfers`."""
    reader = AccountHistory(ctx, account, history)
    after = params.log_cursor(cursor) if cursor else None
    items, next_cursor = page(reader.hold_rows(after), reader.load_hold, limit, reader.log_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{address}/points",
    response_model=Page[PointsRow],
    summary="Points earned, redeemed and transferred, and a merchant's offers, newest first",
)
async def account_points(
    account: Address, ctx: Context, history: Filter, limit: Limit = 50, cursor: Cursor = None
) -> dict:
    """Only events of the wallet token and Points ledger at their genesis addresses; an
    offer redemption is one `offer_redeemed` row (under the customer and the merchant)."""
    reader = AccountHistory(ctx, account, history)
    after = params.log_cursor(cursor) if cursor else None
    items, next_cursor = page(
        reader.points_rows(after), reader.load_points, limit, reader.log_cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{address}/spending",
    response_model=Spending,
    summary="Outgoing wallet-token payments by month and by merchant category",
)
async def spending(
    account: Address,
    ctx: Context,
    from_time: Annotated[int | None, Query(ge=0, le=MAX_TIME)] = None,
    to_time: Annotated[int | None, Query(ge=0, le=MAX_TIME)] = None,
) -> dict:
    """Every wallet-token Transfer out of the account in the range, except burns
    (withdrawals): to a registered merchant under its category, to the fee collector as
    `fees`, otherwise `uncategorised`. Months are UTC."""
    history = HistoryFilter(from_time=from_time, to_time=to_time, token=WALLET_TOKEN)
    reader = AccountHistory(ctx, account, history)
    head = ctx.reader.head().header
    collector = await ctx.bank.fee_collector(head)
    by_month: dict[str, int] = defaultdict(int)
    by_category: dict[str, int] = defaultdict(int)
    categories: dict[bytes, str] = {}
    total = 0
    for row in reader.transfer_rows(None):
        if row.token != WALLET_TOKEN or row.sender != account:
            continue
        if row.recipient in (account, ZERO_ADDRESS):
            continue
        category = categories.get(row.recipient)
        if category is None:
            merchant = ctx.merchants.get(row.recipient)
            if merchant is not None:
                category = merchant.category
            elif row.recipient == collector:
                category = "fees"
            else:
                category = "uncategorised"
            categories[row.recipient] = category
        month = datetime.fromtimestamp(row.timestamp, UTC).strftime("%Y-%m")
        by_month[month] += row.amount
        by_category[category] += row.amount
        total += row.amount
    return {
        "address": params.checksum(account),
        "token": params.checksum(WALLET_TOKEN),
        "by_month": [{"month": m, "total": str(v)} for m, v in sorted(by_month.items())],
        "by_category": [
            {"category": c, "total": str(v)}
            for c, v in sorted(by_category.items(), key=lambda item: (-item[1], item[0]))
        ],
        "total": str(total),
    }


class ExportKind(StrEnum):
    TRANSACTIONS = "transactions"
    TRANSFERS = "transfers"
    FEES = "fees"
    HOLDS = "holds"
    POINTS = "points"


_COLUMNS: dict[ExportKind, list[str]] = {
    ExportKind.TRANSACTIONS: [
        field.alias or name for name, field in AccountTransaction.model_fields.items()
    ],
    ExportKind.TRANSFERS: [field.alias or name for name, field in Transfer.model_fields.items()],
    ExportKind.FEES: list(FeePaid.model_fields),
    ExportKind.HOLDS: [field.alias or name for name, field in HeldPaymentRow.model_fields.items()],
    ExportKind.POINTS: list(PointsRow.model_fields),
}


@router.get("/{address}/export", summary="The account's history as CSV or JSON (streamed)")
async def export_history(
    account: Address,
    ctx: Context,
    history: Filter,
    format: Annotated[ExportFormat, Query()] = ExportFormat.CSV,
    kind: Annotated[ExportKind, Query()] = ExportKind.TRANSACTIONS,
) -> StreamingResponse:
    reader = AccountHistory(ctx, account, history)
    rows: Any
    if kind is ExportKind.TRANSACTIONS:
        rows = everything(reader.transaction_rows(None), reader.load_transaction)
    elif kind is ExportKind.TRANSFERS:
        rows = everything(reader.transfer_rows(None), reader.load_transfer)
    elif kind is ExportKind.FEES:
        rows = everything(reader.fee_rows(None), reader.load_fee)
    elif kind is ExportKind.HOLDS:
        rows = everything(reader.hold_rows(None), reader.load_hold)
    else:
        rows = everything(reader.points_rows(None), reader.load_points)
    name = f"{params.checksum(account)}-{kind.value}"
    return stream(rows, _COLUMNS[kind], format, name)
