"""GET /status: is the node up, where is its head, is it in sync (public, for probes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from node.api.context import ApiContext, context
from node.api.models import Status
from node.api.params import hexd, iso_time

router = APIRouter(prefix="/status", tags=["status"])


@router.get("", response_model=Status, summary="Chain id, head, peers, sync state (public)")
async def status(ctx: Annotated[ApiContext, Depends(context)]) -> dict:
    head = ctx.reader.head()
    return {
        "chain_id": ctx.chain.chain_id,
        "head": {
            "number": head.number,
            "hash": hexd(head.hash),
            "timestamp": head.timestamp,
            "time": iso_time(head.timestamp),
        },
        "peers": ctx.peers(),
        "syncing": ctx.syncing(),
    }
