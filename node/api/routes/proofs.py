"""GET /proofs/{address}: an account (and storage slots) with Merkle proofs, plus the block
header they verify against, so an auditor checks a balance without trusting this node.

The proof is `eth_getProof`'s own answer (node.rpc.proofs), taken at the same block as the
header returned; the header RLP hashes (after QBFT's seal stripping) to the block hash.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from node.api import params, views
from node.api.auth import Caller
from node.api.context import ApiContext, context
from node.api.errors import BadRequest, NotFound
from node.api.models import Proof
from node.rpc.errors import RpcError
from node.rpc.proofs import MAX_STORAGE_KEYS

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
    head, _ = ctx.head()
    number = params.block_number(block, head.block_number)
    header = ctx.chain.header_by_number(number)
    if header is None:
        raise NotFound("no such block")
    keys = [key.strip() for key in storage_keys.split(",") if key.strip()] if storage_keys else []
    try:
        proof = ctx.proofs.get_proof(params.hexd(account), keys, hex(number))
    except RpcError as exc:
        raise BadRequest(exc.message) from exc
    return {
        "block": {
            "number": header.block_number,
            "hash": params.hexd(views.header_hash(header)),
            "state_root": params.hexd(header.state_root),
            "header_rlp": views.header_rlp(header),
        },
        "proof": proof,
    }
