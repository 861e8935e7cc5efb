"""Blocks: newest-first pages, one block with its validators and re-checked commit seals, and
streamed exports of a block range. Readable by every role but customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from node.api import params, views
from node.api.auth import chain_reader
from node.api.context import ApiContext, context
from node.api.errors import BadRequest, NotFound
from node.api.export import ExportFormat, stream
from node.api.history import page
from node.api.models import Block, BlockSummary, Page

router = APIRouter(prefix="/blocks", tags=["blocks"], dependencies=[Depends(chain_reader)])

MAX_EXPORT_BLOCKS = 100_000
BLOCK_COLUMNS = list(BlockSummary.model_fields)


def _summary(ctx: ApiContext, number: int) -> dict[str, Any] | None:
    found = ctx.reader.canonical(number)
    return None if found is None else views.block_summary(ctx.reader, *found)


@router.get("", response_model=Page[BlockSummary], summary="Blocks, newest first")
async def list_blocks(
    ctx: Annotated[ApiContext, Depends(context)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    top = ctx.reader.head().number
    if cursor is not None:
        top = min(top, params.block_cursor(cursor) - 1)
    items, next_cursor = page(
        range(top, -1, -1),
        lambda number: _summary(ctx, number),
        limit,
        lambda number: params.encode_cursor("blk", number),
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/export", summary="A block range as CSV or JSON (streamed)")
async def export_blocks(
    ctx: Annotated[ApiContext, Depends(context)],
    from_block: Annotated[int, Query(ge=0, le=params.MAX_BLOCK_NUMBER)] = 0,
    to_block: Annotated[int | None, Query(ge=0, le=params.MAX_BLOCK_NUMBER)] = None,
    format: Annotated[ExportFormat, Query()] = ExportFormat.CSV,
) -> StreamingResponse:
    head = ctx.reader.head().header
    last = head.block_number if to_block is None else min(to_block, head.block_number)
    if from_block > last:
        raise BadRequest("from_block is above to_block (or the head)")
    if last - from_block + 1 > MAX_EXPORT_BLOCKS:
        raise BadRequest(f"export at most {MAX_EXPORT_BLOCKS} blocks at once")

    def rows() -> Iterator[dict[str, Any]]:
        for number in range(from_block, last + 1):
            row = _summary(ctx, number)
            if row is not None:
                yield row

    return stream(rows(), BLOCK_COLUMNS, format, f"blocks-{from_block}-{last}")


@router.get("/{block_id}", response_model=Block, summary="One block by number or hash")
async def get_block(
    block_id: Annotated[str, Path(max_length=80, description="number, 0x-hash or 'latest'")],
    ctx: Annotated[ApiContext, Depends(context)],
) -> dict:
    if len(block_id) == 66 and block_id.startswith("0x"):
        block_hash = params.hash32(block_id, "block hash")
        header = ctx.reader.header_by_hash(block_hash)
        if header is not None and not ctx.reader.is_canonical(block_hash, header.block_number):
            header = None
    else:
        number = params.block_number(block_id, ctx.reader.head().number)
        found = ctx.reader.canonical(number)
        header, block_hash = found if found is not None else (None, b"")
    if header is None:
        raise NotFound("no such block")
    return views.block_detail(ctx.reader, header, block_hash)
