"""An Etherscan-compatible read API at `/api?module=...&action=...`, for the wallets,
accounting tools and scripts that already speak Etherscan's.

Served from the node's indexes (account transactions, token transfers, internal transactions)
and headers, with Etherscan's envelope: `{"status": "1", "message": "OK", "result": ...}`;
an empty list is `"0"` with "No transactions found" (getLogs: "No records found"); a refusal
is `"0"`, "NOTOK" and the reason in `result`. Every answer is HTTP 200, as Etherscan's are
(its clients read the envelope, not the status), refusals included: a bad parameter, a missing
or invalid key, a credential that may not read the account, and the rate limit
("Max rate limit reached", with Retry-After).

Credentials and roles are the REST API's: the key goes in `apikey` (Etherscan's way) or in
the Authorization / X-API-Key header; admins and auditors read every account, enterprises
and customers only their own addresses; getLogs, token-wide tokentx and other parties'
transaction statuses are chain-wide reads (not for customers). Requests count against the
same per-address and per-caller budgets as /api/v1.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from eth.abc import BlockHeaderAPI
from eth_typing import Address
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from node.api import etherscan_rows as rows
from node.api.auth import Principal, authenticate
from node.api.context import ApiContext, context
from node.api.errors import RateLimited, Unauthenticated
from node.api.etherscan_logs import (
    MAX_LOG_RANGE,
    MAX_LOGS,
    TOPICS,
    LogQuery,
    log_query,
    matching_logs,
)
from node.api.etherscan_params import MAX_WINDOW, EtherscanError, Query, Window
from node.api.ratelimit import client_of
from node.chain.vm import decode_transaction
from node.domain.indexer import TRANSFER_TOPIC
from node.domain.indexes import InternalTransaction, LogPosition, TokenTransfer
from node.storage.records import ReceiptRecord, TransactionRecord

router = APIRouter(tags=["etherscan"])

MAX_SCANNED_TXS = 100_000
"""Transactions txlistinternal by block range may look through (one lookup each)."""


def _envelope(status: str, message: str, result: Any, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, "result": result}, headers=headers)


def _ok(result: Any) -> JSONResponse:
    return _envelope("1", "OK", result)


def _listing(items: list[Any], none: str = "No transactions found") -> JSONResponse:
    return _ok(items) if items else _envelope("0", none, [])


# callers ------------------------------------------------------------------------------------
def _caller(request: Request, ctx: ApiContext, query: Query) -> Principal:
    """Count the request (per address, then per caller) and resolve its credential."""
    client = client_of(request)
    ctx.limiter.count_address(client)
    try:
        caller = authenticate(request, query.text("apikey"))
    except Unauthenticated:
        raise EtherscanError("Invalid API Key") from None
    if caller is None:
        ctx.limiter.count_caller(f"anonymous@{client}")
        raise EtherscanError("Missing/Invalid API Key")
    ctx.limiter.count_caller(caller.identity)
    return caller


def _may_read(caller: Principal, address: bytes) -> None:
    if not caller.may_read(address):
        raise EtherscanError("Error! This API key may not read that address")


def _reads_chain(caller: Principal) -> None:
    if not caller.reads_chain:
        raise EtherscanError("Error! Customer API keys may read only their own addresses")


# the endpoint -------------------------------------------------------------------------------
Handler = Callable[[ApiContext, Principal, Query], JSONResponse]

_PARAMETERS = {
    "module": "account, logs, block or transaction",
    "action": "txlist, tokentx, txlistinternal, balance, tokenbalance; getLogs; "
    "getblocknobytime; getstatus, gettxreceiptstatus",
    "apikey": "an API key (tk_...), or a session token; or send it in Authorization",
    "address": "0x address",
    "contractaddress": "0x address of an ERC-20",
    "txhash": "0x transaction hash",
    "startblock": "first block (decimal)",
    "endblock": "last block (decimal or latest)",
    "page": "page number, from 1",
    "offset": "rows per page (page x offset <= 10000)",
    "sort": "asc or desc",
    "tag": "latest",
    "fromBlock": "getLogs: first block (decimal, 0x-hex or latest)",
    "toBlock": "getLogs: last block",
    **{f"topic{n}": f"getLogs: topic {n} (0x, 32 bytes)" for n in range(TOPICS)},
    **{
        f"topic{a}_{b}_opr": f"getLogs: and|or between topic{a} and topic{b}"
        for a, b in itertools.combinations(range(TOPICS), 2)
    },
    "timestamp": "unix seconds",
    "closest": "before or after",
    "chainid": "if given, this chain's id",
}
"""Etherscan's parameters, read from the query string by the handlers (so that a bad one is
refused in Etherscan's envelope, not FastAPI's), declared here for the OpenAPI document."""


@router.get(
    "/api",
    summary="Etherscan-compatible reads (module, action and Etherscan's parameters)",
    description=(
        "`module=account` (`txlist`, `tokentx`, `txlistinternal`, `balance`, "
        "`tokenbalance`), `module=logs&action=getLogs`, "
        "`module=block&action=getblocknobytime`, `module=transaction` (`getstatus`, "
        "`gettxreceiptstatus`); key in `apikey` or the Authorization header. Always HTTP "
        "200 with Etherscan's envelope."
    ),
    openapi_extra={
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in _PARAMETERS.items()
        ]
    },
)
async def etherscan(request: Request, ctx: Annotated[ApiContext, Depends(context)]) -> Any:
    query = Query(dict(request.query_params), asyncio.get_running_loop())
    try:
        caller = _caller(request, ctx, query)
        handler = _handler(ctx, query)
    except RateLimited as exc:
        return _envelope("0", "NOTOK", "Max rate limit reached", exc.headers)
    except EtherscanError as exc:
        return _envelope("0", "NOTOK", str(exc))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_READS, _answer, handler, ctx, caller, query)


def _handler(ctx: ApiContext, query: Query) -> Handler:
    """The action's handler, once module, action and chain id check out."""
    module = (query.text("module") or "").lower()
    actions = _MODULES.get(module)
    if actions is None:
        raise EtherscanError("Error! Missing Or invalid Module name")
    handler = actions.get(query.text("action") or "")
    if handler is None:
        raise EtherscanError("Error! Missing Or invalid Action name")
    chain_id = query.text("chainid")
    if chain_id is not None and chain_id != str(ctx.chain.chain_id):
        raise EtherscanError("Missing or unsupported chainid parameter")
    return handler


def _answer(handler: Handler, ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    try:
        return handler(ctx, caller, query)
    except EtherscanError as exc:
        return _envelope("0", "NOTOK", str(exc))


_READS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="etherscan")
"""Where answers are read: off the event loop (a 10,000-row list or a getLogs scan takes a
second) and off the loop's default executor, which builds and commits blocks. Handlers read
the store, not the chain's in-memory caches, so they share no mutable state with the loop,
and pause while a block is being made (as eth_getLogs scans do)."""


def _head(ctx: ApiContext) -> BlockHeaderAPI:
    """The committed head, from the store (the head pointer is written in each block's batch)."""
    store = ctx.chain.store
    head_hash = store.head_hash()
    header = None if head_hash is None else store.header(head_hash)
    if header is None:
        raise EtherscanError("Error! The node has no chain yet")
    return header


# module=account -----------------------------------------------------------------------------
def _balance(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    address = query.address("address")
    assert address is not None
    _may_read(caller, address)
    tag = (query.text("tag") or "latest").lower()
    if tag not in ("latest", "pending", "finalized", "safe"):
        raise EtherscanError("Error! Invalid tag (only latest is kept)")
    return _ok(str(ctx.chain.state_at(_head(ctx)).get_balance(Address(address))))


def _token_balance(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    token = query.address("contractaddress")
    address = query.address("address")
    assert token is not None and address is not None
    _may_read(caller, address)
    balance = query.on_loop(ctx.bank.token_balance(_head(ctx), address, token))
    if balance is None:
        raise EtherscanError("Error! contractaddress does not answer balanceOf")
    return _ok(str(balance))


def _txlist(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    address = query.address("address")
    assert address is not None
    _may_read(caller, address)
    head = _head(ctx)
    window = Window.of(query, head.block_number)
    if window.empty:
        return _listing([])
    start = window.start()
    after = None if start is None else (start.block_number, start.tx_index)
    positions = ctx.index.account_transactions(address, newest_first=window.descending, after=after)
    store, items = ctx.chain.store, []
    for number, index in window.within(positions, lambda row: row[0]):
        ctx.chain.block_work.idle.wait()
        block_hash = store.canonical_hash(number)
        tx_hash = _tx_hash_at(ctx, block_hash, index) if block_hash else None
        record = None if tx_hash is None else store.transaction(tx_hash)
        receipt = None if tx_hash is None else store.receipt(tx_hash)
        header = None if block_hash is None else store.header(block_hash)
        if tx_hash is None or record is None or receipt is None or header is None:
            continue
        tx = decode_transaction(record.raw)
        items.append(
            rows.normal_transaction(
                tx, tx_hash, record, receipt, header.timestamp, head.block_number
            )
        )
    return _listing(items)


def _tx_hash_at(ctx: ApiContext, block_hash: bytes, index: int) -> bytes | None:
    """The hash at `index` of a block's body, sliced rather than split (blocks hold
    thousands)."""
    hashes = ctx.chain.store.block_transactions(block_hash)
    return hashes[index] if 0 <= index < len(hashes) else None


class _TokenMetadata:
    """ERC-20 name, symbol and decimals by token, read once (a bounded cache: tokens
    do not rename themselves, and a page names few)."""

    def __init__(self, size: int = 256) -> None:
        self._known: OrderedDict[bytes, tuple[str, str, int | None]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, ctx: ApiContext, query: Query, token: bytes) -> tuple[str, str, int | None]:
        with self._lock:
            found = self._known.get(token)
        if found is None:
            found = query.on_loop(ctx.bank.token_metadata(_head(ctx), token))
            with self._lock:
                self._known[token] = found
                if len(self._known) > self._size:
                    self._known.popitem(last=False)
        return found


_METADATA = _TokenMetadata()


def _tokentx(ctx: ApiContext, caller: Principal, query: Query) -> Any:
    address = query.address("address", required=False)
    token = query.address("contractaddress", required=False)
    head = _head(ctx)
    window = Window.of(query, head.block_number)
    if address is None:
        if token is None:
            raise EtherscanError("Error! Missing address or contractaddress")
        _reads_chain(caller)
        return _token_wide_transfers(ctx, query, token, window, head.block_number)
    _may_read(caller, address)
    if window.empty:
        return _listing([])
    transfers: Iterator[TokenTransfer] = ctx.index.token_transfers(
        address, newest_first=window.descending, after=window.start()
    )
    if token is not None:
        transfers = (row for row in transfers if row.token == token)
    chosen = window.within(transfers, lambda row: row.position.block_number)
    return _listing(_transfer_rows(ctx, query, chosen, head.block_number))


def _transfer_rows(
    ctx: ApiContext, query: Query, chosen: list[TokenTransfer], head: int
) -> list[dict]:
    store, items = ctx.chain.store, []
    for row in chosen:
        ctx.chain.block_work.idle.wait()
        record = store.transaction(row.tx_hash)
        receipt = store.receipt(row.tx_hash)
        if record is None or receipt is None:
            continue
        tx = decode_transaction(record.raw)
        metadata = _METADATA.get(ctx, query, row.token)
        items.append(rows.token_transfer(row, tx, record, receipt, metadata, head))
    return items


def _txlistinternal(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    if query.text("txhash") is not None:
        return _internal_by_hash(ctx, caller, query)
    address = query.address("address", required=False)
    window = Window.of(query, _head(ctx).block_number)
    if address is None:
        _reads_chain(caller)
        return _internal_in_blocks(ctx, window)
    _may_read(caller, address)
    if window.empty:
        return _listing([])
    calls: Iterator[InternalTransaction] = ctx.index.internal_transactions(
        address, newest_first=window.descending, after=window.start()
    )
    chosen = window.within(calls, lambda row: row.position.block_number)
    return _listing([rows.internal_transaction(row) for row in chosen])


def _internal_in_blocks(ctx: ApiContext, window: Window) -> JSONResponse:
    """Every internal transaction of blocks startblock..endblock (no address): one body read
    a block and one lookup a transaction, so bounded in blocks and in transactions."""
    if window.empty:
        return _listing([])
    if window.last - window.first + 1 > MAX_LOG_RANGE:
        raise EtherscanError(
            f"Error! Without an address, startblock..endblock may span at most "
            f"{MAX_LOG_RANGE} blocks"
        )
    store = ctx.chain.store
    numbers = range(window.first, window.last + 1)
    found: list[InternalTransaction] = []
    scanned = 0
    for number in reversed(numbers) if window.descending else numbers:
        ctx.chain.block_work.idle.wait()
        block_hash = store.canonical_hash(number)
        hashes = [] if block_hash is None else store.block_tx_hashes(block_hash)
        scanned += len(hashes)
        if scanned > MAX_SCANNED_TXS:
            raise EtherscanError(
                f"Error! More than {MAX_SCANNED_TXS} transactions in startblock..endblock; "
                "narrow the range"
            )
        in_block: list[InternalTransaction] = []
        for index, tx_hash in enumerate(hashes):
            in_block += ctx.index.tx_internals(tx_hash, number, index)[1]
        found += reversed(in_block) if window.descending else in_block
        if len(found) >= window.skip + window.take:
            break
    chosen = found[window.skip : window.skip + window.take]
    return _listing([rows.internal_transaction(row) for row in chosen])


def _internal_by_hash(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    tx_hash = query.hash32("txhash")
    record = ctx.chain.store.transaction(tx_hash)
    if record is None:
        return _listing([])
    _, calls = ctx.index.tx_internals(tx_hash, record.block_number, record.index)
    if not caller.reads_chain:
        tx = decode_transaction(record.raw)
        parties = {record.sender, tx.to} | {c.sender for c in calls}
        parties |= {c.recipient or c.created for c in calls}
        if not parties & set(caller.addresses):
            raise EtherscanError("Error! This API key may not read that transaction")
    return _listing([rows.internal_transaction(row, by_hash=True) for row in calls])


# module=logs --------------------------------------------------------------------------------
def _get_logs(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    _reads_chain(caller)
    criteria = log_query(query)
    head = _head(ctx).block_number
    first = query.block("fromBlock", 0, head)
    last = query.block("toBlock", head, head)
    if first > last:
        return _listing([], "No records found")
    if last - first + 1 > MAX_LOG_RANGE:
        raise EtherscanError(f"Error! Block range too large (at most {MAX_LOG_RANGE} blocks)")
    page = max(query.number("page", 1), 1)
    offset = query.number("offset", 0) or MAX_LOGS
    if offset > MAX_LOGS or page * offset > MAX_WINDOW:
        raise EtherscanError(
            f"Error! offset may be at most {MAX_LOGS} and page x offset at most {MAX_WINDOW}"
        )
    found = _scan_logs(ctx, criteria, first, last, page * offset)
    return _listing(found[(page - 1) * offset : page * offset], "No records found")


def _scan_logs(
    ctx: ApiContext, criteria: LogQuery, first: int, last: int, wanted: int
) -> list[dict]:
    return [
        rows.log_entry(f.log, f.record, f.receipt, f.tx_hash, f.log_index, f.timestamp)
        for f in itertools.islice(matching_logs(ctx, criteria, first, last), wanted)
    ]


def _token_wide_transfers(
    ctx: ApiContext, query: Query, token: bytes, window: Window, head: int
) -> JSONResponse:
    """tokentx by contractaddress alone: the token's Transfer logs, scanned like getLogs
    (no index holds a token's transfers by token), so bounded like it."""
    if window.empty:
        return _listing([])
    if window.last - window.first + 1 > MAX_LOG_RANGE:
        raise EtherscanError(
            f"Error! Without an address, startblock..endblock may span at most "
            f"{MAX_LOG_RANGE} blocks"
        )
    criteria = LogQuery(token, ((0, TRANSFER_TOPIC),), ())
    found = _token_transfers_in(ctx, criteria, window)
    return _listing(_transfer_rows(ctx, query, found, head))


def _token_transfers_in(ctx: ApiContext, criteria: LogQuery, window: Window) -> list[TokenTransfer]:
    transfers = [
        TokenTransfer(
            LogPosition(f.record.block_number, f.record.index, f.log_index),
            f.log.address,
            f.log.topics[1][12:],
            f.log.topics[2][12:],
            int.from_bytes(f.log.data, "big"),
            f.tx_hash,
            f.timestamp,
        )
        for f in matching_logs(ctx, criteria, window.first, window.last)
        if len(f.log.topics) == 3 and len(f.log.data) == 32
    ]
    if window.descending:
        transfers.reverse()
    return transfers[window.skip : window.skip + window.take]


# module=block -------------------------------------------------------------------------------
def _block_by_time(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    timestamp = query.number("timestamp", -1)
    if timestamp < 0:
        raise EtherscanError("Error! Invalid timestamp")
    closest = query.choice("closest", ("before", "after"))
    if closest == "before":
        number = ctx.index.block_at_or_before(timestamp)
    else:
        number = ctx.index.block_at_or_after(timestamp)
    if number is None:
        raise EtherscanError("Error! No closest block found")
    return _ok(str(number))


# module=transaction -------------------------------------------------------------------------
def _status_source(
    ctx: ApiContext, caller: Principal, query: Query
) -> tuple[TransactionRecord | None, ReceiptRecord | None]:
    """(transaction record, receipt) of `txhash` (None, None while unknown or pending); a
    customer sees only transactions it sent, received or moved tokens in."""
    tx_hash = query.hash32("txhash")
    store = ctx.chain.store
    record, receipt = store.transaction(tx_hash), store.receipt(tx_hash)
    if record is not None and not caller.reads_chain:
        tx = decode_transaction(record.raw)
        parties = {record.sender, tx.to}
        if receipt is not None:
            parties.add(receipt.contract_address)
            for log in receipt.logs:
                if len(log.topics) == 3 and log.topics[0] == TRANSFER_TOPIC:
                    parties |= {log.topics[1][12:], log.topics[2][12:]}
        if not parties & set(caller.addresses):
            raise EtherscanError("Error! This API key may not read that transaction")
    return record, receipt


def _get_status(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    record, receipt = _status_source(ctx, caller, query)
    if record is None or receipt is None or receipt.status == 1:
        return _ok({"isError": "0", "errDescription": ""})
    tx_hash = query.hash32("txhash")
    error, _ = ctx.index.tx_internals(tx_hash, record.block_number, record.index)
    return _ok({"isError": "1", "errDescription": error or "Reverted"})


def _receipt_status(ctx: ApiContext, caller: Principal, query: Query) -> JSONResponse:
    _, receipt = _status_source(ctx, caller, query)
    return _ok({"status": "" if receipt is None else str(receipt.status)})


_MODULES: dict[str, dict[str, Handler]] = {
    "account": {
        "balance": _balance,
        "tokenbalance": _token_balance,
        "txlist": _txlist,
        "tokentx": _tokentx,
        "txlistinternal": _txlistinternal,
    },
    "logs": {"getLogs": _get_logs},
    "block": {"getblocknobytime": _block_by_time, "getblocknumberbytime": _block_by_time},
    "transaction": {"getstatus": _get_status, "gettxreceiptstatus": _receipt_status},
}
