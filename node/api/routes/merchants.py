"""The bank's merchant registry: every caller reads it, admins maintain it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from node.api import params
from node.api.auth import Caller, require
from node.api.context import ApiContext, context
from node.api.errors import NotFound
from node.api.merchants import Merchant as MerchantEntry
from node.api.models import Merchant, MerchantRequest, Page
from node.api.roles import ApiRole

router = APIRouter(prefix="/merchants", tags=["merchants"])

Context = Annotated[ApiContext, Depends(context)]
AddressPath = Annotated[str, Path(max_length=64)]


def _out(merchant: MerchantEntry) -> dict:
    return {
        "address": params.checksum(merchant.address),
        "name": merchant.name,
        "category": merchant.category,
    }


@router.get("", response_model=Page[Merchant], summary="Every registered merchant")
async def list_merchants(caller: Caller, ctx: Context) -> dict:
    return {"items": [_out(m) for m in ctx.merchants.all()], "next_cursor": None}


@router.put(
    "/{address}",
    response_model=Merchant,
    summary="Register or update a merchant",
    dependencies=[Depends(require(ApiRole.ADMIN))],
)
async def put_merchant(address: AddressPath, body: MerchantRequest, ctx: Context) -> dict:
    merchant = MerchantEntry(params.address(address), body.name.strip(), body.category.strip())
    ctx.merchants.save(merchant)
    return _out(merchant)


@router.delete(
    "/{address}",
    status_code=204,
    summary="Remove a merchant",
    dependencies=[Depends(require(ApiRole.ADMIN))],
)
async def delete_merchant(address: AddressPath, ctx: Context) -> Response:
    if not ctx.merchants.delete(params.address(address)):
        raise NotFound("no merchant at that address")
    return Response(status_code=204)
