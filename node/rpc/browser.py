"""What a web browser may do with the public listener (JSON-RPC, REST API, explorer): pure ASGI
middleware, as geth's `--http.vhosts` and `--http.corsdomain` handlers.

A page an operator has open in a browser can send requests to the node on their machine, to
127.0.0.1 directly (cross-site request forgery) or through a DNS name it points at 127.0.0.1
after the page loaded (DNS rebinding). The guard refuses both before any route runs:

- **Host** (rebinding): a request whose Host header names a host not in `vhosts` is refused
  with 403. An IP literal always passes, as in geth: rebinding needs a DNS name, and a page can
  only make the browser send its own. `*` allows every name.
- **Origin** (forgery): a browser names the page's origin on every cross-origin request and on
  every WebSocket handshake. A request with an Origin that is neither this node's own (the same
  host on one of its public ports, as the explorer at /explorer/ is) nor listed in
  `cors_domains` is refused with 403, and only a listed one gets `Access-Control-Allow-Origin`
  (preflights included). Clients that are not browsers (web3.py, ethers, cast) send no Origin.

The third browser rule, JSON-RPC only as `Content-Type: application/json` (a cross-site page
cannot send that without a CORS preflight), is the JSON-RPC route's own (`node.rpc.server`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.rpc.errors import ListenerConfigError

DEFAULT_VHOSTS = ("localhost",)
"""Host names allowed besides IP literals and the listen host (geth's default is the same)."""
ANY = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PREFLIGHT_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_PREFLIGHT_HEADERS = "Authorization, Content-Type, X-API-Key"
_PREFLIGHT_MAX_AGE = "600"


def split_list(text: str) -> tuple[str, ...]:
    """A comma-separated option value as its entries (what `--vhosts a,b` means)."""
    return tuple(entry.strip() for entry in text.split(",") if entry.strip())


def _origin(text: str) -> SplitResult | None:
    """An origin (scheme://host[:port]) split, or None if `text` is not one."""
    try:
        parts = urlsplit(text.strip().lower())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    return parts


def is_origin(text: str) -> bool:
    """Whether `text` is an origin (scheme://host[:port], http or https)."""
    return _origin(text) is not None


def _port(parts: SplitResult, scheme: str) -> int:
    return parts.port if parts.port is not None else _DEFAULT_PORTS[scheme]


def _canonical(parts: SplitResult) -> tuple[str, str, int]:
    return parts.scheme, parts.hostname or "", _port(parts, parts.scheme)


@dataclass(frozen=True, slots=True)
class BrowserPolicy:
    """Which Host names and which foreign origins the public listener accepts."""

    vhosts: frozenset[str]
    cors_domains: frozenset[tuple[str, str, int]]
    cors_any: bool
    own_ports: frozenset[int]

    @classmethod
    def build(
        cls,
        vhosts: Iterable[str],
        cors_domains: Iterable[str],
        listen_host: str,
        own_ports: Iterable[int],
    ) -> BrowserPolicy:
        """Checked settings: a CORS entry that is not an origin or `*` is `ListenerConfigError`
        (it could never match, and a silent mismatch is a day of debugging). The listen host,
        if it is a name, is allowed as a vhost."""
        names = {name.strip().lower() for name in vhosts if name.strip()}
        if not _is_ip(listen_host):
            names.add(listen_host.lower())
        origins: set[tuple[str, str, int]] = set()
        cors_any = False
        for entry in cors_domains:
            if entry.strip() == ANY:
                cors_any = True
                continue
            parts = _origin(entry)
            if parts is None:
                raise ListenerConfigError(
                    f"--cors-domains: {entry!r} is not an origin (http[s]://host[:port]) or *"
                )
            origins.add(_canonical(parts))
        return cls(frozenset(names), frozenset(origins), cors_any, frozenset(own_ports))

    def host_allowed(self, host: str | None) -> bool:
        if ANY in self.vhosts:
            return True
        parts = _host(host)
        if parts is None or parts.hostname is None:
            return False
        return _is_ip(parts.hostname) or parts.hostname in self.vhosts

    def same_origin(self, origin: SplitResult, host: str | None) -> bool:
        """The page is this node's own: the host it asked, on that port or another public
        port of this node (the explorer on the HTTP port talking to the WS port)."""
        target = _host(host)
        if target is None or origin.hostname != target.hostname:
            return False
        asked = _port(target, origin.scheme)
        return _port(origin, origin.scheme) in self.own_ports | {asked}

    def foreign_allowed(self, origin: SplitResult) -> bool:
        return _canonical(origin) in self.cors_domains


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _host(header: str | None) -> SplitResult | None:
    """A Host header ("name:port", "[::1]:port") split, or None when missing or malformed."""
    if not header:
        return None
    try:
        parts = urlsplit("//" + header.lower())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts if parts.hostname else None


def _refusal(code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=403)


class BrowserGuard:
    """The Host and Origin rules of the module docstring, around the public listener's app."""

    def __init__(self, app: ASGIApp, policy: BrowserPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal, allow_origin = self._check(headers)
        if refusal is not None:
            if scope["type"] == "websocket":
                # Closing before the handshake is accepted: the server answers 403.
                await send({"type": "websocket.close", "code": 1008, "reason": refusal[1]})
            else:
                await _refusal(*refusal)(scope, receive, send)
            return
        if allow_origin is None:
            await self.app(scope, receive, send)
            return
        preflight = scope["type"] == "http" and scope["method"] == "OPTIONS"
        if preflight and "access-control-request-method" in headers:
            await self._preflight(allow_origin)(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["Access-Control-Allow-Origin"] = allow_origin
                response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)

    def _check(self, headers: Headers) -> tuple[tuple[str, str] | None, str | None]:
        """(refusal code and message, or None; the Access-Control-Allow-Origin to send)."""
        host = headers.get("host")
        if not self.policy.host_allowed(host):
            return ("forbidden_host", f"invalid host specified: {host!r} (--vhosts)"), None
        origin_header = headers.get("origin")
        if origin_header is None:
            return None, None
        if self.policy.cors_any:
            return None, ANY
        origin = _origin(origin_header)
        if origin is not None and self.policy.same_origin(origin, host):
            return None, None
        if origin is None or not self.policy.foreign_allowed(origin):
            message = f"origin {origin_header!r} not allowed (--cors-domains)"
            return ("forbidden_origin", message), None
        return None, origin_header

    @staticmethod
    def _preflight(allow_origin: str) -> Response:
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": allow_origin,
                "Access-Control-Allow-Methods": _PREFLIGHT_METHODS,
                "Access-Control-Allow-Headers": _PREFLIGHT_HEADERS,
                "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
                "Vary": "Origin",
            },
        )
