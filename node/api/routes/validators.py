"""GET /validators: the validator set a block lists (the set that sealed it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from node.api import params, views
from node.api.auth import chain_reader
from node.api.context import ApiContext, context
from node.api.errors import NotFound
from node.api.models import Validators
from node.qbftheader.extra_data import ExtraDataError, QbftExtraData

router = APIRouter(prefix="/validators", tags=["blocks"], dependencies=[Depends(chain_reader)])


@router.get("", response_model=Validators, summary="Validators of a block")
async def validators(
    ctx: Annotated[ApiContext, Depends(context)],
    block: Annotated[str, Query(max_length=80, description="'latest' or a number")] = "latest",
) -> dict:
    head = ctx.reader.head().header
    header = ctx.chain.header_by_number(params.block_number(block, head.block_number))
    if header is None:
        raise NotFound("no such block")
    try:
        listed = QbftExtraData.decode(header.extra_data).validators
    except ExtraDataError:
        listed = ()
    return {
        "block": {
            "number": header.block_number,
            "hash": params.hexd(views.header_hash(header)),
            "timestamp": header.timestamp,
            "time": params.iso_time(header.timestamp),
        },
        "validators": [params.checksum(v) for v in listed],
    }
