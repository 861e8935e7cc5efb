"""Fee quotes and payment requests: what a wallet shows before and for a payment."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from node.api import params
from node.api.auth import Caller
from node.api.context import ApiContext, context
from node.api.errors import BadRequest
from node.api.models import FeeQuote, PaymentRequest
from node.domain.contracts import FeeKind
from tally_common.eip681 import PaymentRequest as Eip681Request
from tally_common.eip681 import PaymentRequestError

router = APIRouter(tags=["payments"])

Context = Annotated[ApiContext, Depends(context)]
MAX_AMOUNT = 2**256 - 1
AddressQuery = Annotated[str, Query(max_length=64)]


@router.get("/fees/quote", response_model=FeeQuote, summary="WalletToken.quoteFee")
async def quote_fee(
    caller: Caller,
    ctx: Context,
    sender: Annotated[str, Query(alias="from", max_length=64)],
    to: AddressQuery,
    amount: Annotated[int, Query(ge=0, le=MAX_AMOUNT)],
    kind: Annotated[FeeKind, Query()] = FeeKind.INTERNAL,
) -> dict:
    payer, payee = params.address(sender, "from"), params.address(to, "to")
    head = ctx.reader.head().header
    fee = await ctx.bank.quote_fee(head, payer, payee, amount, kind.code)
    if fee is None:
        raise BadRequest("the wallet token could not quote this payment")
    return {
        "from": params.checksum(payer),
        "to": params.checksum(payee),
        "amount": str(amount),
        "kind": kind.value,
        "fee": str(fee),
        "total": str(amount + fee),
    }


@router.get(
    "/payment-requests", response_model=PaymentRequest, summary="EIP-681 URI and its QR code"
)
async def payment_request(
    caller: Caller,
    ctx: Context,
    to: AddressQuery,
    amount: Annotated[int, Query(ge=0, le=MAX_AMOUNT, description="wei, or token base units")],
    token: Annotated[str | None, Query(max_length=64)] = None,
    memo: Annotated[str | None, Query(max_length=140)] = None,
) -> dict:
    """A coin request without `token`, an ERC-20 `transfer` request with it. The memo is
    returned beside the URI: EIP-681 has no memo parameter, and wallets refuse unknown ones."""
    recipient = params.checksum(params.address(to, "to"))
    token_address = params.checksum(params.address(token, "token")) if token else None
    try:
        request = Eip681Request(recipient, amount, ctx.chain.chain_id, token_address)
    except PaymentRequestError as exc:
        raise BadRequest(str(exc)) from exc
    svg = io.BytesIO()
    request.qr().save(svg, kind="svg", scale=4, border=4, xmldecl=False)
    return {"uri": request.to_uri(), "qr_svg": svg.getvalue().decode(), "memo": memo}
