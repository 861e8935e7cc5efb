"""Rate limits of the REST API, as moving windows (the `limits` library, in memory), counted
before any handler runs. Each node limits on its own.

Three budgets:

- **per client address** (`--api-address-rate-limit`): every /api/ request counts against the
  address it came from, whatever credential it carries, so minting credentials (junk strings,
  or sessions of throwaway wallets on an open chain) buys no extra requests.
- **per caller** (`--api-rate-limit`): a request with a valid credential also counts against
  the identity behind it (the API key, or the signed-in wallet, however many sessions it
  holds); a request without one against its address's anonymous budget. An invalid credential
  is no identity: when each string presented had a budget of its own, a fresh junk bearer per
  request was never limited.
- **failed authentication per address** (`--api-auth-failure-limit`): an unknown, revoked or
  expired credential, or a sign-in answer that does not check out, counts here; once over,
  the address gets 429 on everything that authenticates (its credentials are not even looked
  up, so a valid one found by guessing could not be told apart) until the window moves on.

An IPv6 client is counted by its /64, the block one subscriber is given, not by each of its
2^64 addresses. The address is the connection's peer; behind reverse proxies listed in
`--api-trusted-proxies`, uvicorn (configured so by `node.service`) replaces it with the last
X-Forwarded-For hop those proxies did not add, and without that list X-Forwarded-For is ignored.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterable

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from node.api.errors import RateLimited
from node.rpc.errors import ListenerConfigError

DEFAULT_RATE_LIMIT = "50/second;1000/minute"
DEFAULT_ADDRESS_RATE_LIMIT = "100/second;3000/minute"
"""Twice a caller's budget a second and three times a minute: room for a few callers sharing
an address (an office's NAT), while one client minting credentials stays bounded."""
DEFAULT_AUTH_FAILURE_LIMIT = "10/minute"


class RateLimits:
    """The three budgets of the module docstring over one in-memory store."""

    def __init__(
        self,
        per_caller: str = DEFAULT_RATE_LIMIT,
        per_address: str = DEFAULT_ADDRESS_RATE_LIMIT,
        auth_failures: str = DEFAULT_AUTH_FAILURE_LIMIT,
    ) -> None:
        self._caller = _parse(per_caller, "--api-rate-limit")
        self._address = _parse(per_address, "--api-address-rate-limit")
        self._failures = _parse(auth_failures, "--api-auth-failure-limit")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def count_address(self, client: str) -> None:
        """One request from `client` (`client_of`); `RateLimited` if over its budget."""
        self._hit(self._address, "address", client)

    def count_caller(self, identity: str) -> None:
        """One request by `identity` (a key, a wallet, or an address's anonymous callers)."""
        self._hit(self._caller, "caller", identity)

    def refuse_if_failing(self, client: str) -> None:
        """`RateLimited` while `client` is over its failed authentications (counts nothing)."""
        for item in self._failures:
            if not self._limiter.test(item, "failures", client):
                raise RateLimited(self._retry_after(item, "failures", client))

    def authentication_failed(self, client: str) -> None:
        for item in self._failures:
            self._limiter.hit(item, "failures", client)

    def _hit(self, items: list[RateLimitItem], *key: str) -> None:
        for item in items:
            if not self._limiter.hit(item, *key):
                raise RateLimited(self._retry_after(item, *key))

    def _retry_after(self, item: RateLimitItem, *key: str) -> int:
        stats = self._limiter.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _parse(spec: str, option: str) -> list[RateLimitItem]:
    """A limit as `limits` reads it, or a `ListenerConfigError` naming the option (checked when
    the node is built, before its datadir is touched)."""
    try:
        return parse_many(spec)
    except ValueError:
        raise ListenerConfigError(
            f"{option}: {spec!r} is not a rate limit such as 50/second;1000/minute"
        ) from None


def client_of(request: HTTPConnection) -> str:
    """The key the request's client is counted under: its IPv4 address or its IPv6 /64."""
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # no peer address (a Unix socket, a test transport)
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def credential_of(request: HTTPConnection) -> str | None:
    """The bearer credential as presented (Authorization: Bearer, else X-API-Key)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def trusted_proxies(entries: Iterable[str]) -> list[str]:
    """`--api-trusted-proxies` checked: IP addresses and networks (CIDR), as uvicorn's
    `forwarded_allow_ips` takes them. Anything else is a `ListenerConfigError`: uvicorn would
    keep it as a name that never matches, and the operator would never learn why."""
    checked = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ListenerConfigError(
                f"--api-trusted-proxies: {entry!r} is not an IP address or network (CIDR)"
            ) from None
        checked.append(str(network.network_address if network.num_addresses == 1 else network))
    return checked
