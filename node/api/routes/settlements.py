"""Settlements: escrow deals (milestones), batch payouts and netting cycles, from the index.

Admins and auditors list all of them or one party's; enterprises and customers see the
settlements they are a party to (without `party`, those of all their addresses, merged in
order of opening).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from node.api import params, views
from node.api.auth import Caller, Principal
from node.api.context import ApiContext, context
from node.api.errors import BadRequest, Forbidden, NotFound
from node.api.history import page
from node.api.models import Page, Settlement
from node.domain.indexes import Settlement as SettlementRow
from node.domain.indexes import settlement_kind_code

router = APIRouter(prefix="/settlements", tags=["settlements"])

Context = Annotated[ApiContext, Depends(context)]
MAX_ID = 2**64 - 1


class Kind(StrEnum):
    ESCROW = "escrow"
    BATCH = "batch"
    NETTING = "netting"


def _order(row: SettlementRow) -> tuple[int, int, int]:
    return row.opened_block, settlement_kind_code(row.kind), row.id


def _rows(
    ctx: ApiContext, parties: list[bytes] | None, after: tuple[str, int] | None
) -> Iterator[SettlementRow]:
    try:
        if parties is None:
            yield from ctx.index.settlements(after=after)
            return
        streams = [ctx.index.settlements(party=party, after=after) for party in parties]
        seen: set[tuple[str, int]] = set()
        for row in heapq.merge(*streams, key=_order, reverse=True):
            if (row.kind, row.id) not in seen:
                seen.add((row.kind, row.id))
                yield row
    except ValueError as exc:
        raise BadRequest("invalid cursor") from exc


def _parties(caller: Principal, party: bytes | None) -> list[bytes] | None:
    if party is not None:
        caller.require_read(party)
        return [party]
    return None if caller.reads_everything else list(caller.addresses)


@router.get("", response_model=Page[Settlement], summary="Settlements, newest opened first")
async def list_settlements(
    caller: Caller,
    ctx: Context,
    party: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[Kind | None, Query()] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    parties = _parties(caller, params.address(party, "party") if party else None)
    after = params.settlement_cursor(cursor) if cursor else None

    def load(row: SettlementRow) -> dict | None:
        if kind is not None and row.kind != kind.value:
            return None
        if state is not None and row.state != state:
            return None
        return views.settlement(row)

    items, next_cursor = page(
        _rows(ctx, parties, after),
        load,
        limit,
        lambda row: params.encode_cursor("set", row.kind, row.id),
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{kind}/{settlement_id}", response_model=Settlement, summary="One settlement")
async def get_settlement(
    kind: Kind,
    settlement_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    caller: Caller,
    ctx: Context,
) -> dict:
    row = ctx.index.settlement(kind.value, settlement_id)
    if row is None:
        raise NotFound(f"no {kind.value} settlement {settlement_id}")
    if not caller.reads_everything and not set(row.parties) & set(caller.addresses):
        raise Forbidden("this credential is not a party to that settlement")
    return views.settlement(row)
