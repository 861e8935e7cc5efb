"""Security headers on every HTTP response of the public listener: the REST API, its docs, the
explorer and JSON-RPC. Pure ASGI middleware, outermost, so refusals made before any route
runs (the browser guard's 403s, the body limit's 413s) carry them too.

- `Content-Security-Policy`: the explorer may load and fetch only from the node and runs no
  inline script (`default-src 'self'`: its page is plain modules, see
  `node/api/static/explorer/js/dom.js`), plus `connect-src` for the origins of
  `--explorer-connect` (the bank gateway's, for its reconciliation page); everything else
  is data, not a page, and may load nothing. A response that sets its own policy keeps it:
  the docs pages need inline code (`node.api.docs`).
- `frame-ancestors 'none'` and `X-Frame-Options: DENY` (for browsers before CSP level 2): no
  page may frame the explorer and trick a click out of a signed-in user.
- `X-Content-Type-Options: nosniff`: a JSON answer carrying text from a transaction or a label
  is never sniffed into HTML or script.
- `Referrer-Policy: no-referrer`: shareable explorer links (`#/tx/0x...`) and API paths with
  account addresses do not leak to other sites.
- `Strict-Transport-Security` on answers sent over TLS (`--tls-cert`): a browser that reached
  the node over https never again tries plain http for it, where it could be intercepted.
  Browsers ignore the header over plain http, so it is not sent there.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.rpc.browser import is_origin
from node.rpc.errors import ListenerConfigError

EXPLORER_PATH = "/explorer"
"""Where the explorer is mounted (`node.api.app`), and so which responses are its page."""

EXPLORER_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def explorer_policy(connect: Iterable[str]) -> str:
    """The explorer's policy, letting it also fetch from `connect` (exact origins; anything
    else is `ListenerConfigError`)."""
    origins = tuple(connect)
    for origin in origins:
        if not is_origin(origin) or origin.rstrip("/") != origin:
            raise ListenerConfigError(f"--explorer-connect: {origin!r} is not an origin")
    if not origins:
        return EXPLORER_POLICY
    return EXPLORER_POLICY + "; connect-src 'self' " + " ".join(origins)


DATA_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

HSTS = "max-age=31536000"
"""A year, no includeSubDomains: the node's name says nothing about its sibling hosts."""

_COMMON = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """The headers of the module docstring, added to each HTTP response that lacks them."""

    def __init__(self, app: ASGIApp, explorer: str = EXPLORER_POLICY) -> None:
        self.app = app
        self.explorer = explorer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        explorer = path == EXPLORER_PATH or path.startswith(EXPLORER_PATH + "/")
        policy = self.explorer if explorer else DATA_POLICY
        secure = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in _COMMON.items():
                    headers.setdefault(name, value)
                if secure:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
