"""API keys, for admins: create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from node.api import params
from node.api.auth import require
from node.api.context import ApiContext, context
from node.api.credentials import ApiKey
from node.api.errors import BadRequest, NotFound
from node.api.models import ApiKeyCreated, ApiKeyInfo, ApiKeyRequest, Page
from node.api.roles import ApiRole

router = APIRouter(
    prefix="/admin/api-keys", tags=["admin"], dependencies=[Depends(require(ApiRole.ADMIN))]
)


def _info(record: ApiKey) -> dict:
    return {
        "id": record.id,
        "role": record.role,
        "label": record.label,
        "addresses": [params.checksum(a) for a in record.addresses],
        "created": record.created,
    }


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create an API key")
async def create_key(body: ApiKeyRequest, ctx: Annotated[ApiContext, Depends(context)]) -> dict:
    addresses = tuple(dict.fromkeys(params.address(a, "addresses[]") for a in body.addresses))
    if body.role in (ApiRole.ENTERPRISE, ApiRole.CUSTOMER) and not addresses:
        raise BadRequest(f"a {body.role.value} key needs the addresses it acts for")
    if body.role in (ApiRole.ADMIN, ApiRole.AUDITOR) and addresses:
        raise BadRequest(f"a {body.role.value} key reads every account; give no addresses")
    key, record = ctx.keys.create(body.role, body.label.strip() or body.role.value, addresses)
    return {**_info(record), "key": key}


@router.get("", response_model=Page[ApiKeyInfo], summary="Every API key (never the keys)")
async def list_keys(ctx: Annotated[ApiContext, Depends(context)]) -> dict:
    return {"items": [_info(record) for record in ctx.keys.all()], "next_cursor": None}


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    key_id: Annotated[str, Path(max_length=64)], ctx: Annotated[ApiContext, Depends(context)]
) -> Response:
    if not ctx.keys.revoke(key_id):
        raise NotFound("no API key with that id")
    return Response(status_code=204)
