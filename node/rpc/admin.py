"""The admin listener: every JSON-RPC method, on loopback only, behind a bearer token.

Admin methods (validator votes, `admin_peers`) change what the node does or reveal how it is
run, so the public listener refuses them (`node.rpc.dispatch`). This listener serves them, as
geth serves its authenticated endpoint on 8551 and Besu its admin APIs where the operator
enables them, with three locks, each enough against a web page in the operator's browser:

- it binds only a loopback address (`check_loopback`: refused before anything starts);
- every request needs `Authorization: Bearer <token>`, the token written at first start to
  `<datadir>/admin-rpc.token` (0600, as the node key; compared in constant time): 401 without;
- a request naming an Origin (a browser page) is refused with 403.

Port 8551 by default, geth's authenticated-RPC port: out of the way of 8545/8546 and known to
operators' firewall rules. It is a port of its own rather than rpc_port + k: several nodes on
one machine pick their rpc ports freely, and a derived port would collide with another node's.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from node.keys import write_private_file
from node.rpc.dispatch import Dispatcher
from node.rpc.errors import ListenerConfigError
from node.rpc.server import create_app

DEFAULT_ADMIN_PORT = 8551
DEFAULT_ADMIN_HOST = "127.0.0.1"
TOKEN_FILE = "admin-rpc.token"
_MIN_TOKEN_LENGTH = 32


def check_loopback(host: str) -> None:
    """`ListenerConfigError` unless `host` is a loopback address (or `localhost`)."""
    if host.lower() == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ListenerConfigError(
            f"--admin-host {host}: the admin listener binds only a loopback address "
            "(127.0.0.1, ::1); reach it through SSH or a local agent, not the network"
        )


def load_or_create_token(datadir: Path) -> Path:
    """The admin token's file, written with a new random token if there is none; a file that
    holds no usable token is `ListenerConfigError` (replacing it would lock out the scripts
    that read it)."""
    path = datadir / TOKEN_FILE
    if not path.exists():
        write_private_file(path, secrets.token_hex(32) + "\n")
    if len(read_token(path)) < _MIN_TOKEN_LENGTH:
        raise ListenerConfigError(
            f"{path} holds no token of {_MIN_TOKEN_LENGTH}+ characters; "
            "delete it and a new one is written at the next start"
        )
    return path


def read_token(path: Path) -> str:
    return path.read_text().strip()


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="tally-admin"'} if status == 401 else None
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class AdminAuth:
    """Pure ASGI middleware: the bearer token and no-browser rules of the module docstring."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._check(Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Closing before the handshake is accepted: the server answers 403.
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[2]})
        else:
            await _refusal(*refusal)(scope, receive, send)

    def _check(self, headers: Headers) -> tuple[int, str, str] | None:
        if "origin" in headers:
            return 403, "forbidden_origin", "the admin listener serves no web pages"
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return 401, "unauthenticated", f"Authorization: Bearer <{TOKEN_FILE}> is required"
        if not hmac.compare_digest(credential.strip().encode(), self._token):
            return 401, "unauthenticated", f"wrong admin token (see {TOKEN_FILE})"
        return None


def create_admin_app(
    dispatcher: Dispatcher, token_path: Path, on_disconnect: Callable[[Any], None]
) -> ASGIApp:
    """JSON-RPC (HTTP and WebSocket) serving every method of `dispatcher`, behind `AdminAuth`."""
    return AdminAuth(create_app(dispatcher, on_disconnect=on_disconnect), read_token(token_path))
