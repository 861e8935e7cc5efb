"""Cross-origin access to the reconciliation report (`tally bank gateway --cors-origins`).

The explorer's operations page (`#/reconciliation/<day>`) is served by a node, another origin
than the gateway, so the browser asks the gateway first (a CORS preflight, since the request
carries `Authorization`). Only `/reconciliation/...` answers cross-origin callers, and only
for the exact origins configured; every other route stays same-origin only. Starlette's
`CORSMiddleware` does the protocol; this only picks the routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/reconciliation/"


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


class ReconciliationCors:
    """CORS for the reconciliation routes only: GET with an `Authorization` header."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET"],
            allow_headers=["Authorization"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
