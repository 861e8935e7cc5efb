"""The gateway's API keys and roles (its own: the bank layer shares nothing with the node's).

A key is `tbk_` plus 256 random bits, shown once when made (`tally bank api-key`); the database
keeps its SHA-256 only (a random 256-bit secret needs no salt or slow hash). Roles:
`operations` (staff: every record, totals), `credit_officer` (staff: credit evaluations of
consenting customers, `bank.credit_api`), `customer` (bound to one wallet address: its own
top-ups, withdrawals and credit consent only), and for the risk service (`bank.risk`)
`analyst` (the case queue: assign, note, escalate) and `compliance` (also closes cases and
acts on chain).
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from bank.models import ApiKey


class GatewayRole(StrEnum):
    OPERATIONS = "operations"
    CREDIT_OFFICER = "credit_officer"
    CUSTOMER = "customer"
    ANALYST = "analyst"
    COMPLIANCE = "compliance"


PREFIX = "tbk_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, role: GatewayRole, name: str, account: str | None = None) -> str:
    """Store a new key's hash and return the key (the only time it is seen)."""
    if (role is GatewayRole.CUSTOMER) != (account is not None):
        raise ValueError("a customer key needs --account; a staff key takes none")
    key = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(key_hash=key_hash(key), role=role.value, account=account, name=name))
    session.commit()
    return key


def authenticate(session: Session, authorization: str | None) -> ApiKey | None:
    """The key an `Authorization: Bearer <key>` header carries, or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    key = authorization.removeprefix("Bearer ").strip()
    if not key.startswith(PREFIX):
        return None
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash(key))).first()
