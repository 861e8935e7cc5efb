"""Transactions: one with its receipt and decoded events, and relaying signed ones.

The API never holds a key: a write is a transaction the user signed, relayed to this node's
pool through the very path `eth_sendRawTransaction` takes (`node.query.relay`). Before that,
the sender is recovered with the pool's own stateless admission check and must be one of the
credential's addresses (admins excepted), so a refused relay leaves the pool untouched.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from node.api import params, views
from node.api.auth import Caller, Principal, require
from node.api.context import ApiContext, context
from node.api.errors import BadRequest, Forbidden, NotFound, TxRejected, Unavailable
from node.api.models import InternalCalls, Relayed, RelayRequest, Transaction
from node.api.roles import ApiRole
from node.chain.tracing.hooks import TraceTooLarge
from node.chain.vm import decode_transaction
from node.domain.indexer import TRANSFER_TOPIC
from node.query.callpool import CallAborted, CallsBusy
from node.query.traces import call_tree
from node.storage.records import ReceiptRecord
from node.txpool.admission import decode_checked
from node.txpool.errors import TxPoolError

router = APIRouter(prefix="/transactions", tags=["transactions"])


def _involves(caller: Principal, parties: set[bytes], receipt: ReceiptRecord | None) -> bool:
    mine = set(caller.addresses)
    if parties & mine:
        return True
    if receipt is None:
        return False
    for log in receipt.logs:
        is_transfer = len(log.topics) == 3 and log.topics[0] == TRANSFER_TOPIC
        if is_transfer and {log.topics[1][12:], log.topics[2][12:]} & mine:
            return True
    return False


@router.get("/{tx_hash}", response_model=Transaction, summary="A transaction, receipt, events")
async def get_transaction(
    tx_hash: Annotated[str, Path(max_length=80)],
    caller: Caller,
    ctx: Annotated[ApiContext, Depends(context)],
) -> dict:
    key = params.hash32(tx_hash, "transaction hash")
    record = ctx.reader.transaction(key)
    if record is not None:
        tx, sender = decode_transaction(record.raw), record.sender
        receipt = ctx.reader.receipt(key)
        header = ctx.reader.header_by_hash(record.block_hash)
    else:
        pooled = ctx.pool.get(key)
        if pooled is None:
            raise NotFound("no such transaction")
        tx, sender, receipt, header = pooled.tx, pooled.sender, None, None
    if not caller.reads_chain:
        parties = {sender, tx.to} if tx.to else {sender}
        if not _involves(caller, parties, receipt):
            raise Forbidden("customers may read only their own transactions")
    return views.transaction_detail(tx, key, sender, record, receipt, header, ctx.events)


@router.get(
    "/{tx_hash}/calls",
    response_model=InternalCalls,
    summary="A mined transaction's internal calls (its call trace)",
    responses={503: {"description": "the trace ran out of time or the node is busy"}},
)
async def get_internal_calls(
    tx_hash: Annotated[str, Path(max_length=80)],
    caller: Caller,
    ctx: Annotated[ApiContext, Depends(context)],
) -> dict:
    """Re-executed on the node's call threads, as `debug_traceTransaction` with callTracer is;
    role-checked as the transaction itself is."""
    key = params.hash32(tx_hash, "transaction hash")
    record = ctx.reader.transaction(key)
    header = None if record is None else ctx.reader.header_by_hash(record.block_hash)
    if record is None or header is None:
        raise NotFound("no such mined transaction")
    if not caller.reads_chain:
        tx = decode_transaction(record.raw)
        parties = {record.sender, tx.to} if tx.to else {record.sender}
        if not _involves(caller, parties, ctx.reader.receipt(key)):
            raise Forbidden("customers may read only their own transactions")
    try:
        tree = await call_tree(ctx.chain, ctx.call_pool, header, record.index)
    except (CallsBusy, CallAborted, TraceTooLarge) as exc:
        raise Unavailable(str(exc), retry_after=5) from exc
    return {"hash": "0x" + key.hex(), "calls": views.flatten_calls(tree)}


@router.post(
    "",
    status_code=202,
    response_model=Relayed,
    summary="Relay a signed transaction to the node's pool",
    responses={400: {"description": "tx_rejected: the node's reason"}},
)
async def relay(
    body: RelayRequest,
    caller: Annotated[
        Principal, Depends(require(ApiRole.ADMIN, ApiRole.ENTERPRISE, ApiRole.CUSTOMER))
    ],
    ctx: Annotated[ApiContext, Depends(context)],
) -> JSONResponse:
    raw = params.hex_data(body.raw, "raw")
    if not raw:
        raise BadRequest("raw is empty")
    try:
        checked = decode_checked(raw, ctx.pool.rules)
    except TxPoolError as exc:
        raise TxRejected(str(exc)) from exc
    if not caller.may_send_from(checked.sender):
        raise Forbidden("the transaction's sender is not one of this credential's addresses")
    try:
        pooled = ctx.relay.submit(raw)
    except TxPoolError as exc:
        raise TxRejected(str(exc)) from exc
    return JSONResponse({"hash": "0x" + pooled.hash.hex()}, status_code=202)
