"""Sign-in with Ethereum: POST /auth/challenge, then POST /auth/token with the signature.

The role comes from the address's AccountRules role at the head: admin, issuer and compliance
sign in as admin; enterprise, auditor and customer as themselves. An address AccountRules does
not know signs in as a customer on a dev chain without permissioning, and is refused on a
permissioned chain (it could not transact there either).

A client address may hold a few open challenges (`node.api.signin`), and a wrong answer to one
counts as a failed authentication of its address (`node.api.ratelimit`), which is refused
further answers once over its allowance.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from node.api import params
from node.api.context import ApiContext, context
from node.api.errors import Forbidden, Unauthenticated
from node.api.models import Challenge, ChallengeRequest, Token, TokenRequest
from node.api.ratelimit import client_of
from node.api.roles import CHAIN_ROLES, ApiRole
from node.domain.contracts import ChainRole

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/challenge", response_model=Challenge, summary="An EIP-4361 message to sign")
async def challenge(
    body: ChallengeRequest, request: Request, ctx: Annotated[ApiContext, Depends(context)]
) -> dict:
    issued = ctx.signin.challenge(params.address(body.address), client_of(request))
    return {"message": issued.message, "nonce": issued.nonce, "expires_at": issued.expires_at}


async def role_of(ctx: ApiContext, address: bytes) -> ApiRole:
    head = ctx.reader.head().header
    known = await ctx.bank.role_and_tier(head, address)
    chain_role = known[0] if known is not None else ChainRole.NONE
    if chain_role in CHAIN_ROLES:
        return CHAIN_ROLES[chain_role]
    if chain_role is ChainRole.NONE and not ctx.permissioned:
        return ApiRole.CUSTOMER
    raise Forbidden("this address has no role that may use the API")


@router.post("/token", response_model=Token, summary="Exchange a signed challenge for a token")
async def token(
    body: TokenRequest, request: Request, ctx: Annotated[ApiContext, Depends(context)]
) -> dict:
    client = client_of(request)
    ctx.limiter.refuse_if_failing(client)
    challenge = ctx.signin.take(body.message)
    try:
        address = ctx.signin.verify(challenge, body.message, body.signature)
    except Unauthenticated:
        ctx.limiter.authentication_failed(client)
        raise
    role = await role_of(ctx, address)
    issued, expires_at = ctx.signin.issue(address, role)
    return {
        "token": issued,
        "token_type": "bearer",
        "role": role,
        "address": params.checksum(address),
        "expires_at": expires_at,
    }
