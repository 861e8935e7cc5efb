"""GET /proofs/{address}: an account (and storage slots) with Merkle proofs, plus the block
header they verify against, so an auditor checks a balance without trusting this node.

The proof is read by `node.query` (as `eth_getProof`'s is) at the very header returned, and
published in EIP-1186's shape; the header RLP hashes (after QBFT's seal stripping) to the
block hash.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from node.api import params, views
from node.api.auth import Caller
from node.api.context import ApiContext, context
from node.api.errors import BadRequest, NotFound
from node.api.models import Proof
from node.query.proofs import MAX_STORAGE_KEYS, eip1186_json, storage_key

router = APIRouter(prefix="/proofs", tags=["proofs"])


@router.get("/{address}", response_model=Proof, summary="eth_getProof with its block header")
async def get_proof(
    address: Annotated[str, Path(max_length=64)],
    caller: Caller,
    ctx: Annotated[ApiContext, Depends(context)],
    storage_keys: Annotated[
        str | None, Query(max_length=70 * MAX_STORAGE_KEYS, description="0x slots, comma-separated")
    ] = None,
    block: Annotated[str, Query(max_length=80, description="'latest' or a number")] = "latest",
) -> dict:
    account = params.address(address)
    caller.require_read(account)
    head = ctx.reader.head()
    number = params.block_number(block, head.number)
    header = ctx.reader.header_by_number(number)
    if header is None:
        raise NotFound("no such block")
    keys = [key.strip() for key in storage_keys.split(",") if key.strip()] if storage_keys else []
    if len(keys) > MAX_STORAGE_KEYS:
        raise BadRequest(f"too many storage keys (max {MAX_STORAGE_KEYS})")
    try:
        slots = [storage_key(key) for key in keys]
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    proof = ctx.reader.proof(header, account, slots)
    return {
        "block": {
            "number": header.block_number,
            "hash": params.hexd(views.header_hash(header)),
            "state_root": params.hexd(header.state_root),
            "header_rlp": views.header_rlp(header),
        },
        "proof": eip1186_json(proof, keys),
    }
