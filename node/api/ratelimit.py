"""Rate limits per credential, as a moving window (the `limits` library, in memory).

The bucket is the credential as presented (its sha256), not the identity it resolves to, so
the limit is checked before any lookup and a flood of garbage tokens is throttled as cheaply
as real ones; requests without a credential share a bucket per client address. Each node
limits on its own.
"""

from __future__ import annotations

import hashlib
import math
import time

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from node.api.errors import RateLimited

DEFAULT_RATE_LIMIT = "50/second;1000/minute"


class RateLimiter:
    def __init__(self, spec: str = DEFAULT_RATE_LIMIT) -> None:
        self.items: list[RateLimitItem] = parse_many(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, bucket: str) -> None:
        """Count one request against `bucket`; raise `RateLimited` (with Retry-After) if over."""
        for item in self.items:
            if not self._limiter.hit(item, bucket):
                stats = self._limiter.get_window_stats(item, bucket)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(retry_after)


def credential_of(request: Request) -> str | None:
    """The bearer credential as presented (Authorization: Bearer, else X-API-Key)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def bucket_of(request: Request) -> str:
    credential = credential_of(request)
    if credential is not None:
        return "cred:" + hashlib.sha256(credential.encode()).hexdigest()
    client = request.client.host if request.client is not None else "unknown"
    return "addr:" + client


async def rate_limited(request: Request) -> None:
    """Router-wide dependency: one hit per request against the caller's bucket."""
    request.app.state.context.limiter.check(bucket_of(request))
