"""GET /me: who the credential is (role, label, the accounts it acts for)."""

from __future__ import annotations

from fastapi import APIRouter

from node.api.auth import Caller
from node.api.models import Me
from node.api.params import checksum

router = APIRouter(prefix="/me", tags=["auth"])


@router.get("", response_model=Me, summary="The caller's role, label and addresses")
async def me(caller: Caller) -> dict:
    return {
        "role": caller.role,
        "label": caller.label,
        "addresses": [checksum(a) for a in caller.addresses],
        "key_id": caller.key_id,
    }
