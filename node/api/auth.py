"""Who is calling, and what they may do: credentials to principals, roles as dependencies.

A request carries `Authorization: Bearer <credential>` (or `X-API-Key`): an API key (`tk_...`)
or a session token from sign-in with Ethereum. Either becomes a `Principal`. Routes declare
what they need with `Depends(require(...))`; per-account checks (`may_read`, `may_send_from`)
are methods, since they depend on the address in the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from node.api.context import ApiContext, context
from node.api.credentials import KEY_PREFIX
from node.api.errors import Forbidden, Unauthenticated
from node.api.roles import Role

_bearer = HTTPBearer(auto_error=False, description="An API key (tk_...) or a session token.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (tk_...).")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: role, a label, and the accounts it acts for."""

    role: Role
    label: str
    addresses: tuple[bytes, ...]
    key_id: str | None = None

    @property
    def reads_everything(self) -> bool:
        return self.role in (Role.ADMIN, Role.AUDITOR)

    @property
    def reads_chain(self) -> bool:
        """Blocks, transactions and validators chain-wide (customers see only their own)."""
        return self.role is not Role.CUSTOMER

    def may_read(self, address: bytes) -> bool:
        return self.reads_everything or address in self.addresses

    def require_read(self, address: bytes) -> None:
        if not self.may_read(address):
            raise Forbidden("this credential may not read that account")

    def may_send_from(self, sender: bytes) -> bool:
        return self.role is Role.ADMIN or (
            self.role in (Role.ENTERPRISE, Role.CUSTOMER) and sender in self.addresses
        )


async def principal(
    ctx: Annotated[ApiContext, Depends(context)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from an API key or a session token; 401 without a valid one."""
    credential = bearer.credentials if bearer is not None else api_key
    if not credential:
        raise Unauthenticated("a credential is required (Authorization: Bearer ...)")
    if credential.startswith(KEY_PREFIX):
        record = ctx.keys.lookup(credential)
        if record is None:
            raise Unauthenticated("invalid or revoked API key")
        return Principal(record.role, record.label, record.addresses, record.id)
    session = ctx.signin.session(credential)
    return Principal(session.role, "sign-in with Ethereum", (session.address,))


Caller = Annotated[Principal, Depends(principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only `roles` (403 for the others)."""

    async def check(caller: Caller) -> Principal:
        if caller.role not in roles:
            allowed = ", ".join(role.value for role in roles)
            raise Forbidden(f"this needs one of the roles: {allowed}")
        return caller

    return check


async def chain_reader(caller: Caller) -> Principal:
    """Blocks and validators: every role but customer."""
    if not caller.reads_chain:
        raise Forbidden("customers may read only their own accounts")
    return caller


def request_origin(request: Request) -> tuple[str, str]:
    """(domain, uri) for a sign-in message: where the wallet is signing in to."""
    return request.url.netloc, str(request.url.replace(query=None, fragment=None))
