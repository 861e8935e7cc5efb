"""Who is calling, and what they may do: credentials to principals, roles as dependencies.

A request carries `Authorization: Bearer <credential>` (or `X-API-Key`): an API key (`tk_...`)
or a session token from sign-in with Ethereum. Either becomes a `Principal`, once per request
(`authenticate`), which is also where an invalid credential is counted against its client's
address and an address over its failures is refused (`node.api.ratelimit`). Routes declare
what they need with `Depends(require(...))`; per-account checks (`may_read`, `may_send_from`)
are methods, since they depend on the address in the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from node.api.context import ApiContext, context
from node.api.credentials import KEY_PREFIX
from node.api.errors import ApiError, Forbidden, RateLimited, Unauthenticated
from node.api.ratelimit import client_of, credential_of
from node.api.roles import ApiRole

_bearer = HTTPBearer(auto_error=False, description="An API key (tk_...) or a session token.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (tk_...).")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: role, a label, and the accounts it acts for."""

    role: ApiRole
    label: str
    addresses: tuple[bytes, ...]
    key_id: str | None = None

    @property
    def identity(self) -> str:
        """Whose budget the caller spends: the API key's, or the wallet's across sessions."""
        return f"key:{self.key_id}" if self.key_id else f"wallet:{self.addresses[0].hex()}"

    @property
    def reads_everything(self) -> bool:
        return self.role in (ApiRole.ADMIN, ApiRole.AUDITOR)

    @property
    def reads_chain(self) -> bool:
        """Blocks, transactions and validators chain-wide (customers see only their own)."""
        return self.role is not ApiRole.CUSTOMER

    def may_read(self, address: bytes) -> bool:
        return self.reads_everything or address in self.addresses

    def require_read(self, address: bytes) -> None:
        if not self.may_read(address):
            raise Forbidden("this credential may not read that account")

    def may_send_from(self, sender: bytes) -> bool:
        return self.role is ApiRole.ADMIN or (
            self.role in (ApiRole.ENTERPRISE, ApiRole.CUSTOMER) and sender in self.addresses
        )


_UNRESOLVED = object()


def authenticate(request: HTTPConnection, credential: str | None = None) -> Principal | None:
    """The caller the request's credential names, None without a credential; 401 for an
    invalid one, 429 while its address is over its failed authentications.

    Resolved once per request and kept on it: the router-wide `rate_limited` resolves it to
    count the request against the caller, and `principal` reuses the answer, so a failure is
    counted once whichever asks first. `credential` is one found elsewhere than the headers
    (the Etherscan API's `apikey` query parameter); the headers' wins."""
    resolved = getattr(request.state, "caller", _UNRESOLVED)
    if resolved is _UNRESOLVED:
        resolved = request.state.caller = _resolve(request, credential_of(request) or credential)
    if isinstance(resolved, ApiError):
        raise resolved
    return resolved if isinstance(resolved, Principal) else None


def _resolve(request: HTTPConnection, credential: str | None) -> Principal | ApiError | None:
    if credential is None:
        return None
    ctx: ApiContext = request.app.state.context
    client = client_of(request)
    try:
        ctx.limiter.refuse_if_failing(client)
        return _principal_of(ctx, credential)
    except RateLimited as exc:
        return exc
    except Unauthenticated as exc:
        ctx.limiter.authentication_failed(client)
        return exc


def _principal_of(ctx: ApiContext, credential: str) -> Principal:
    if credential.startswith(KEY_PREFIX):
        record = ctx.keys.lookup(credential)
        if record is None:
            raise Unauthenticated("invalid or revoked API key")
        return Principal(record.role, record.label, record.addresses, record.id)
    session = ctx.signin.session(credential)
    return Principal(session.role, "sign-in with Ethereum", (session.address,))


async def rate_limited(request: Request, ctx: Annotated[ApiContext, Depends(context)]) -> None:
    """Router-wide dependency: one request against its client address, then against its
    caller (`node.api.ratelimit`). A request whose credential is invalid counts against its
    address only; public routes then answer it as if it had none, the others with 401."""
    client = client_of(request)
    ctx.limiter.count_address(client)
    try:
        caller = authenticate(request)
    except Unauthenticated:
        return
    ctx.limiter.count_caller(caller.identity if caller is not None else f"anonymous@{client}")


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, from an API key or a session token; 401 without a valid one. (`bearer` and
    `api_key` declare the two schemes in the OpenAPI document; `authenticate` reads them.)"""
    caller = authenticate(request)
    if caller is None:
        raise Unauthenticated("a credential is required (Authorization: Bearer ...)")
    return caller


Caller = Annotated[Principal, Depends(principal)]


def require(*roles: ApiRole) -> Callable[[Principal], Awaitable[Principal]]:
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
