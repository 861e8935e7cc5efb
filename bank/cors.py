"""Cross-origin access for the explorer's bank pages (`--cors-origins` of `tally bank gateway`
and `tally bank risk serve`).

The explorer's operations and compliance pages (`#/reconciliation/<day>`, `#/compliance`) are
served by a node, another origin than the bank's services, so the browser asks the service
first (a CORS preflight, since the request carries `Authorization`). Only the routes under the
given path prefixes answer cross-origin callers, with the given methods, and only for the exact
origins configured; every other route stays same-origin only. Starlette's `CORSMiddleware`
does the protocol; this only picks the routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


def parse_origins(text: str) -> tuple[str, ...]:
    """`--cors-origins` as exact origins (`scheme://host[:port]`); ValueError names a bad one."""
    origins = tuple(entry.strip() for entry in text.split(",") if entry.strip())
    for origin in origins:
        try:
            parts = urlsplit(origin)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or f"{parts.scheme}://{parts.netloc}" != origin
            or parts.username is not None
        ):
            raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
    return origins


class PrefixCors:
    """CORS for the routes under `prefixes` only: `methods` with an `Authorization` header
    (and `Content-Type`, for JSON bodies)."""

    def __init__(
        self,
        app: ASGIApp,
        origins: Iterable[str],
        prefixes: Iterable[str],
        methods: Iterable[str] = ("GET",),
    ) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=list(methods),
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
