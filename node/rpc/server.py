"""JSON-RPC over HTTP (POST /) and WebSocket (/) as a Starlette app.

Both listeners (the HTTP and the WS port) serve the same app, so either protocol works on
either port, as geth's do. A POST must be `Content-Type: application/json` (415 otherwise, as
geth answers) and bodies above `max_body_bytes` are refused before parsing. The node serves
these routes inside the REST API's app (`node.api.app`), on the same listeners, behind the
browser guard (`node.rpc.browser`), and on its admin listener (`node.rpc.admin`).

A GET of / is no JSON-RPC call. A browser asking for a page there (its Accept names text/html)
is sent to the explorer when the app serves one (a route named `explorer`); any other client
gets a JSON-RPC error saying to POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, NoMatchFound, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from node.rpc.dispatch import Dispatcher
from node.rpc.wslimits import TRY_AGAIN_LATER, WsLimits

log = logging.getLogger(__name__)

_JSON = "application/json"
_JSON_MEDIA_TYPES = frozenset((_JSON, "application/json-rpc", "application/jsonrequest"))
"""What a POST must declare (geth's list): a web page cannot send these cross-site unless a
CORS preflight allows it, so a form or a text/plain fetch from any site is refused."""
EXPLORER_ROUTE = "explorer"
"""The name of the route serving the explorer page, where browsers opening / are sent."""


class WsConnection:
    """One WebSocket client: where subscription notifications are sent."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
        self.subscriptions: dict[str, Any] = {}
        self.closed = False
        self._closing: asyncio.Future[None] | None = None

    def notify(self, payload: bytes) -> None:
        """Queue a message; a client too slow to drain 10,000 messages is disconnected."""
        if self.closed:
            return
        try:
            self.outbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("websocket client too slow; closing it")
            self.closed = True
            self._closing = asyncio.ensure_future(self._close(1008))

    async def _close(self, code: int) -> None:
        """Close the socket, which ends the endpoint's receive loop and drops subscriptions."""
        with contextlib.suppress(RuntimeError):  # already closed by the client
            await self.websocket.close(code=code)


def rpc_routes(
    dispatcher: Dispatcher,
    max_body_bytes: int = 16 * 1024 * 1024,
    on_disconnect: Any = None,
    metrics: Any = None,
    ws_limits: WsLimits | None = None,
) -> list[BaseRoute]:
    """JSON-RPC's routes (POST /, WS /, GET /metrics), to serve alone (`create_app`) or beside
    the REST API on the same listener (`node.api.app.create_api`).

    `on_disconnect(connection)` drops a WS client's subscriptions; `metrics` (a `NodeMetrics`)
    is served as Prometheus text at GET /metrics; `ws_limits` caps WebSocket connections."""
    limits = ws_limits or WsLimits()

    async def http_endpoint(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type not in _JSON_MEDIA_TYPES:
            return _refused(415, "Content-Type must be application/json")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return _too_large()
        body = await request.body()
        if len(body) > max_body_bytes:
            return _too_large()
        response = await dispatcher.handle_body(body)
        if response is None:
            return Response(status_code=204)
        return Response(response, media_type=_JSON)

    async def get_endpoint(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            try:
                page = request.app.url_path_for(EXPLORER_ROUTE, path="/")
            except NoMatchFound:  # JSON-RPC served alone: no page to send the browser to
                pass
            else:
                return RedirectResponse(str(page), status_code=307)
        return JSONResponse(
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "JSON-RPC requests must be POSTed"},
            },
            status_code=405,
        )

    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        address = websocket.client.host if websocket.client else "?"
        refusal = limits.admit(address)
        if refusal is not None:
            await websocket.close(code=TRY_AGAIN_LATER, reason=refusal)
            return
        try:
            await _serve_ws(websocket)
        finally:
            limits.release(address)

    async def _serve_ws(websocket: WebSocket) -> None:
        connection = WsConnection(websocket)
        sender = asyncio.create_task(_drain(connection))
        try:
            while not connection.closed:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                body = message.get("bytes") or (message.get("text") or "").encode()
                if len(body) > max_body_bytes:
                    connection.notify(
                        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,'
                        b'"message":"request body too large"}}'
                    )
                    continue
                response = await dispatcher.handle_body(body, connection)
                if response is not None:
                    connection.notify(response)
        except WebSocketDisconnect:
            pass
        finally:
            connection.closed = True
            sender.cancel()
            if on_disconnect is not None:
                on_disconnect(connection)

    async def post_or_get(request: Request) -> Response:
        if request.method == "POST":
            return await http_endpoint(request)
        return await get_endpoint(request)

    async def metrics_endpoint(request: Request) -> Response:
        from node.metrics import CONTENT_TYPE

        return Response(metrics.render(), media_type=CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/", post_or_get, methods=["POST", "GET"]),
        WebSocketRoute("/", ws_endpoint),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return routes


def create_app(
    dispatcher: Dispatcher,
    max_body_bytes: int = 16 * 1024 * 1024,
    on_disconnect: Any = None,
    metrics: Any = None,
    ws_limits: WsLimits | None = None,
) -> Starlette:
    """The JSON-RPC app alone (a node run with the REST API off)."""
    return Starlette(
        routes=rpc_routes(dispatcher, max_body_bytes, on_disconnect, metrics, ws_limits)
    )


def _too_large() -> Response:
    return _refused(413, "request body too large")


def _refused(status: int, message: str) -> Response:
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}},
        status_code=status,
    )


async def _drain(connection: WsConnection) -> None:
    try:
        while True:
            payload = await connection.outbox.get()
            await connection.websocket.send_text(payload.decode())
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        connection.closed = True
